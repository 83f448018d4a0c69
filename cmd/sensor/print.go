package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/passivesensor/sensor/asset"
	"github.com/passivesensor/sensor/capture"
)

// Printer writes reports as tables or as JSON lines.
type Printer struct {
	W    io.Writer
	JSON bool
}

// jsonAsset is the stable line shape of an asset; later work adds fields.
type jsonAsset struct {
	Kind      string            `json:"kind"`
	ID        string            `json:"id"`
	Class     string            `json:"asset_class,omitempty"` // inventoried, external, ...
	IP        string            `json:"ip,omitempty"`
	IPs       []string          `json:"ips,omitempty"`
	MAC       string            `json:"mac,omitempty"`
	Router    bool              `json:"router,omitempty"`
	Hostname  string            `json:"hostname,omitempty"`
	Domain    string            `json:"domain,omitempty"`
	Vendor    string            `json:"vendor,omitempty"`
	Model     string            `json:"model,omitempty"`
	Firmware  string            `json:"firmware,omitempty"`
	Serial    string            `json:"serial,omitempty"`
	OS        string            `json:"os,omitempty"`
	OSName    string            `json:"os_name,omitempty"`
	OSVersion string            `json:"os_version,omitempty"`
	OSConf    int               `json:"os_confidence,omitempty"`
	NAT       bool              `json:"nat,omitempty"`
	DevClass  string            `json:"class,omitempty"`
	Protocols []string          `json:"protocols,omitempty"`
	OpenPorts []string          `json:"open_ports,omitempty"`
	Attrs     map[string]string `json:"attrs,omitempty"`
	FirstSeen string            `json:"first_seen,omitempty"`
	LastSeen  string            `json:"last_seen,omitempty"`
}

type jsonFlow struct {
	Kind       string `json:"kind"`
	Src        string `json:"src,omitempty"`
	Dst        string `json:"dst,omitempty"`
	SrcAsset   string `json:"src_asset,omitempty"`
	DstAsset   string `json:"dst_asset,omitempty"`
	DPort      uint16 `json:"dport"`
	Proto      string `json:"proto"`
	BytesOut   uint64 `json:"bytes_out"`
	BytesIn    uint64 `json:"bytes_in"`
	PacketsOut uint64 `json:"packets_out"`
	PacketsIn  uint64 `json:"packets_in"`
}

type jsonStats struct {
	Kind string `json:"kind"`
	capture.Stats
}

func protoName(p uint8) string {
	switch p {
	case capture.ProtoTCP:
		return "tcp"
	case capture.ProtoUDP:
		return "udp"
	}
	return fmt.Sprint(p)
}

func ports(ps []asset.Port) []string {
	var out []string
	for _, p := range ps {
		out = append(out, fmt.Sprintf("%d/%s", p.Port, protoName(p.Proto)))
	}
	return out
}

func assetLine(a asset.Asset) jsonAsset {
	j := jsonAsset{Kind: "asset", ID: a.ID, Class: a.Kind.String(), Router: a.Router,
		Hostname: a.Hostname, Domain: a.Domain, Vendor: a.Vendor, Model: a.Model, Firmware: a.Firmware,
		Serial: a.Serial, OS: a.OS, OSName: a.OSName, OSVersion: a.OSVersion, OSConf: a.OSConfidence, NAT: a.NAT, DevClass: a.Class, Protocols: a.Protocols, OpenPorts: ports(a.OpenPorts), Attrs: a.Attrs}
	if len(a.IPs) > 0 {
		j.IP = a.IPs[0].String()
		if len(a.IPs) > 1 {
			for _, ip := range a.IPs {
				j.IPs = append(j.IPs, ip.String())
			}
		}
	}
	if !a.MAC.IsZero() {
		j.MAC = a.MAC.String()
	}
	if !a.FirstSeen.IsZero() {
		j.FirstSeen = a.FirstSeen.UTC().Format("2006-01-02T15:04:05.000Z07:00")
		j.LastSeen = a.LastSeen.UTC().Format("2006-01-02T15:04:05.000Z07:00")
	}
	return j
}

func flowLine(r asset.TrafficRecord) jsonFlow {
	j := jsonFlow{Kind: "flow", SrcAsset: r.SrcAsset, DstAsset: r.DstAsset, DPort: r.DPort, Proto: protoName(r.Proto),
		BytesOut: r.BytesOut, BytesIn: r.BytesIn, PacketsOut: r.PacketsOut, PacketsIn: r.PacketsIn}
	if r.Src.IsValid() {
		j.Src = r.Src.String()
	}
	if r.Dst.IsValid() {
		j.Dst = r.Dst.String()
	}
	return j
}

// Print writes r.
func (p Printer) Print(r Report) {
	if p.JSON {
		enc := json.NewEncoder(p.W)
		for _, a := range r.Assets {
			enc.Encode(assetLine(a))
		}
		for _, t := range r.Traffic {
			enc.Encode(flowLine(t))
		}
		enc.Encode(jsonStats{Kind: "stats", Stats: r.Stats})
		return
	}
	fmt.Fprintf(p.W, "Devices on the network (%d)\n", len(r.Assets))
	tw := tabwriter.NewWriter(p.W, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IP\tMAC\tHOSTNAME\tVENDOR\tMODEL\tCLASS\tOS\tROLES\tPROTOCOLS\tOPEN PORTS")
	for _, a := range r.Assets {
		j := assetLine(a)
		ip := j.IP
		if len(j.IPs) > 1 {
			ip = strings.Join(j.IPs, ",")
		}
		if ip == "" {
			ip = a.ID
		}
		class := a.Class
		if a.Router && class == "" {
			class = "router"
		}
		if a.NAT {
			class = strings.TrimSpace(class + " (NAT)")
		}
		if a.Kind != asset.Inventoried {
			class = strings.TrimSpace(class + " (" + a.Kind.String() + ")")
		}
		os := a.OS
		if os != "" && a.OSConfidence > 0 {
			os = fmt.Sprintf("%s (%d%%)", os, a.OSConfidence)
		}
		name := a.Hostname
		if a.Domain != "" && name != "" {
			name += "." + a.Domain
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ip, dash(j.MAC), dash(name), dash(short(a.Vendor, 24)),
			dash(short(a.Model, 24)), dash(class), dash(short(os, 32)), dash(a.Attrs["role"]), dash(strings.Join(a.Protocols, ",")), dash(strings.Join(j.OpenPorts, ",")))
	}
	tw.Flush()

	fmt.Fprintf(p.W, "\nWho talks to whom (%d)\n", len(r.Traffic))
	tw = tabwriter.NewWriter(p.W, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tDESTINATION\tPORT\tBYTES OUT\tBYTES IN\tPACKETS OUT\tPACKETS IN")
	sorted := append([]asset.TrafficRecord(nil), r.Traffic...)
	sort.SliceStable(sorted, func(i, j int) bool {
		return sorted[i].BytesOut+sorted[i].BytesIn > sorted[j].BytesOut+sorted[j].BytesIn
	})
	for _, t := range sorted {
		j := flowLine(t)
		fmt.Fprintf(tw, "%s\t%s\t%d/%s\t%d\t%d\t%d\t%d\n", endpoint(j.Src, j.SrcAsset), endpoint(j.Dst, j.DstAsset),
			j.DPort, j.Proto, j.BytesOut, j.BytesIn, j.PacketsOut, j.PacketsIn)
	}
	tw.Flush()
	st := r.Stats
	fmt.Fprintf(p.W, "\nframes %d, bytes %d, kernel drops %d, duplicates %d, decode errors %d, fragments %d\n",
		st.Frames, st.Bytes, st.KernelDrops, st.Duplicates, st.DecodeErrors, st.Fragments)
}

func endpoint(addr, id string) string {
	switch {
	case addr == "":
		return id
	case id == "" || strings.HasPrefix(id, "mac:") || strings.HasPrefix(id, "ip:"):
		return addr
	}
	return addr + " (" + id + ")"
}

// short keeps table cells readable; -json carries the whole value.
func short(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
