package main

import "strings"

// Niagara Fox on TCP 1911: the hello exchange ("fox a <n> -1 fox hello",
// then "{", "key=type:value" lines and "};;", as nmap's fox-info script
// documents it).

func foxHello(n string, kv ...string) []byte {
	var b strings.Builder
	b.WriteString("fox a " + n + " -1 fox hello\n{\n")
	for i := 0; i+1 < len(kv); i += 2 {
		b.WriteString(kv[i] + "=" + kv[i+1] + "\n")
	}
	b.WriteString("};;\n")
	return []byte(b.String())
}

func init() {
	addScene("64-fox", func(wr *Wire) {
		// Workbench on the engineering station opens the air handler's JACE.
		wr.ARP(eng, niagaraJACE)
		s := wr.Dial(eng.MAC, eng.IP, 50500, niagaraJACE.MAC, niagaraJACE.IP, 1911)
		s.Exchange(foxHello("1", "fox.version", "s:1.0", "id", "i:1", "hostName", "s:eng-station", "hostAddress", "s:10.10.0.31",
			"app.name", "s:Workbench", "app.version", "s:4.10.1.36", "vm.name", "s:OpenJDK 64-Bit Server VM", "vm.version", "s:25.292",
			"os.name", "s:Windows 10", "os.version", "s:10.0", "lang", "s:en", "brandId", "s:vykon"),
			foxHello("0", "fox.version", "s:1.0", "id", "i:2", "hostName", "s:jace-ahu", "hostAddress", "s:10.10.0.163",
				"app.name", "s:Station", "app.version", "s:4.10.1.36", "vm.name", "s:Java HotSpot(TM) Embedded Client VM", "vm.version", "s:25.281",
				"os.name", "s:QNX", "os.version", "s:6.5.0", "station.name", "s:AHU_Plant", "lang", "s:en",
				"hostId", "s:Qnx-TITAN-0000-1A2B-3C4D", "brandId", "s:vykon"))
		s.Close()
	})
}
