package dissect

// DefaultStreamMax bounds the bytes a Stream buffers.
const DefaultStreamMax = 16 << 10

// Stream puts one direction of a TCP flow back in order for dissectors whose
// messages span segments. It is bounded: a gap (a lost segment), or more
// than Max buffered bytes, drops what is buffered and starts again at the
// next segment, so a dissector must resynchronise by checking each message
// header (most messages start a segment). Retransmitted bytes are skipped.
type Stream struct {
	// Max is the buffer bound; DefaultStreamMax when zero.
	Max     int
	buf     []byte
	next    uint32 // sequence number expected next
	started bool
}

// Push adds a segment's payload at sequence number seq. It reports whether
// the buffer was restarted (a gap, or overflow): the caller should treat
// Bytes as beginning at an unknown boundary.
func (s *Stream) Push(seq uint32, payload []byte) (restarted bool) {
	max := s.Max
	if max <= 0 {
		max = DefaultStreamMax
	}
	if s.started {
		d := int32(seq - s.next)
		switch {
		case d < 0: // overlap with what we have: keep only the new part
			skip := -int(d)
			if skip >= len(payload) {
				return false
			}
			payload = payload[skip:]
			seq = s.next
		case d > 0: // gap
			s.buf = s.buf[:0]
			restarted = true
		}
	}
	if len(s.buf)+len(payload) > max {
		s.buf = s.buf[:0]
		restarted = true
		if len(payload) > max {
			seq += uint32(len(payload) - max)
			payload = payload[len(payload)-max:]
		}
	}
	s.started = true
	s.buf = append(s.buf, payload...)
	s.next = seq + uint32(len(payload))
	return restarted
}

// Bytes returns the buffered bytes; valid until the next Push or Consume.
func (s *Stream) Bytes() []byte { return s.buf }

// Consume drops the first n buffered bytes (a whole message read).
func (s *Stream) Consume(n int) {
	if n >= len(s.buf) {
		s.buf = s.buf[:0]
		return
	}
	copy(s.buf, s.buf[n:])
	s.buf = s.buf[:len(s.buf)-n]
}

// Reset forgets everything buffered.
func (s *Stream) Reset() { s.buf = s.buf[:0]; s.started = false }
