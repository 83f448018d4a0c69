package main

// SSH: the engineering station opens an SSH session to the historian; both
// send their identification strings (RFC 4253 section 4.2), the server
// first, before the binary packet protocol starts.

func init() {
	addScene("30-ssh", func(wr *Wire) {
		s := wr.Dial(eng.MAC, eng.IP, 50222, histSrv.MAC, histSrv.IP, 22)
		s.seg(false, false, true, []byte("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"))
		s.seg(true, false, true, []byte("SSH-2.0-OpenSSH_for_Windows_8.1\r\n"))
		s.Close()
	})
}
