package menu

// Nav is the position in the menu tree that a front end shows: a stack of
// open submenus with the cursor of each.
type Nav struct {
	stack []frame
}

type frame struct {
	item   *Item
	items  []*Item
	cursor int
}

// NewNav starts at root's children.
func NewNav(root *Item) *Nav {
	n := &Nav{}
	n.push(root)
	return n
}

func (n *Nav) push(it *Item) {
	n.stack = append(n.stack, frame{item: it, items: it.Children()})
}

func (n *Nav) top() *frame { return &n.stack[len(n.stack)-1] }

// Title is the open submenu's label, with its parents ("Setup > Network").
func (n *Nav) Title() string {
	s := ""
	for i, f := range n.stack {
		if i > 0 {
			s += " > "
		}
		s += f.item.Label
	}
	return s
}

// Label is the open submenu's own label.
func (n *Nav) Label() string { return n.top().item.Label }

// Depth is 1 at the top menu.
func (n *Nav) Depth() int { return len(n.stack) }

// Items are the open submenu's lines.
func (n *Nav) Items() []*Item { return n.top().items }

// Cursor is the index of the selected line.
func (n *Nav) Cursor() int { return n.top().cursor }

// Selected is the selected line (nil in an empty submenu).
func (n *Nav) Selected() *Item {
	f := n.top()
	if f.cursor < len(f.items) {
		return f.items[f.cursor]
	}
	return nil
}

// Up moves the cursor up, wrapping to the bottom.
func (n *Nav) Up() {
	f := n.top()
	if len(f.items) == 0 {
		return
	}
	f.cursor = (f.cursor + len(f.items) - 1) % len(f.items)
}

// Down moves the cursor down, wrapping to the top.
func (n *Nav) Down() {
	f := n.top()
	if len(f.items) == 0 {
		return
	}
	f.cursor = (f.cursor + 1) % len(f.items)
}

// Select moves the cursor to line i (ignored when out of range).
func (n *Nav) Select(i int) {
	f := n.top()
	if i >= 0 && i < len(f.items) {
		f.cursor = i
	}
}

// Open enters the selected submenu and reports whether it was one.
func (n *Nav) Open() bool {
	it := n.Selected()
	if it == nil || it.Kind != Submenu {
		return false
	}
	n.push(it)
	return true
}

// Back leaves the open submenu; false at the top.
func (n *Nav) Back() bool {
	if len(n.stack) <= 1 {
		return false
	}
	n.stack = n.stack[:len(n.stack)-1]
	n.Refresh()
	return true
}

// Home returns to the top menu.
func (n *Nav) Home() {
	n.stack = n.stack[:1]
	n.Refresh()
}

// Refresh recomputes the open submenu's lines (status pages change), keeping
// the cursor in range.
func (n *Nav) Refresh() {
	f := n.top()
	f.items = f.item.Children()
	if f.cursor >= len(f.items) {
		f.cursor = max(0, len(f.items)-1)
	}
}
