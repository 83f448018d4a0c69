package uplink

// Static string dictionary
//
// Small batches (a few new assets every five minutes) gain little from the
// per-batch string table: a string must repeat within the batch. Many
// strings repeat across every batch of every sensor instead: attribute
// names, protocol names, device classes, common values. Those are in a
// dictionary both ends know. A text (schema rule "text") that is a
// negative integer -1-i stands for entry i of the dictionary; the batch
// names the dictionary version it uses (key 6 of batch).
//
// A dictionary version never changes once released: a new version only
// appends entries. A sensor uses the highest version both it and the cloud
// know (the cloud says which in its configuration, Config.Dictionary), so
// an older cloud is never sent an entry it cannot resolve.

// DictVersion is the newest dictionary version this software knows.
const DictVersion = 1

// dictV1 is version 1, most frequent first: the first 24 entries take
// one byte on the wire, the next 232 two.
var dictV1 = []string{
	// 0..23: one byte.
	"addressing", "static", "dhcp", "role", "router", "true", "arp", "dns",
	"mdns", "llmnr", "lldp", "cdp", "modbus", "http", "tls", "netbios",
	"smb", "snmp", "ntp", "workstation", "plc", "hmi", "switch", "external",
	// Attribute names of the dissectors' vocabulary.
	"hostname", "domain", "fqdn", "vendor", "model", "firmware", "hardware", "serial",
	"os", "class", "name", "service", "ip", "vlan", "dns.a", "dns.aaaa",
	// Roles.
	"dhcp-server", "dns-server", "modbus-server", "modbus-client", "dnp3-master", "dnp3-outstation",
	"s7-server", "s7-client", "enip-server", "enip-client", "bacnet-server", "bacnet-client",
	"iec104-server", "iec104-client", "opcua-server", "opcua-client", "ntp-server", "snmp-agent",
	"http-server", "tls-server", "dhcp-client",
	// Protocols.
	"s7comm", "s7comm-plus", "enip", "cip", "dnp3", "iec104", "iec61850", "mms",
	"goose", "sv", "bacnet", "profinet", "pn-dcp", "opcua", "ethercat", "mqtt",
	"ssh", "rdp", "ftp", "telnet", "sip", "rtsp", "upnp", "ssdp",
	"wsd", "kerberos", "ldap", "nbns", "dhcpv6", "ndp", "icmpv6", "stp",
	"lacp", "ptp", "hart-ip", "fins", "melsec", "slmp", "codesys", "knx",
	"dlms", "modbus-rtu", "bootp", "syslog", "tftp", "smtp", "radius", "coap",
	// Protocol-specific attribute names.
	"arp.gratuitous", "dhcp.vendor_class", "dhcp.param_list", "dhcp.hostname", "dhcp.type", "dhcp.client_id",
	"lldp.system_description", "lldp.system_name", "lldp.port_id", "lldp.port_description", "lldp.chassis_id",
	"lldp.capabilities", "lldp.software_revision", "lldp.firmware_revision", "lldp.hardware_revision",
	"lldp.serial", "lldp.model", "lldp.manufacturer",
	"cdp.software_version", "cdp.capabilities", "cdp.platform", "cdp.device_id", "cdp.port_id",
	"modbus.unit", "modbus.unit_ids", "modbus.vendor_url", "modbus.product_name", "modbus.product_code",
	"modbus.read_device_id", "modbus.func_code", "modbus.exception", "modbus.diagnostics", "modbus.write",
	"mdns.services", "mdns.txt", "dns.txt", "llmnr.name", "netbios.name", "netbios.domain",
	"http.user_agent", "http.server", "tls.sni", "tls.ja3", "tls.ja3s", "ssh.banner", "snmp.sys_descr",
	"snmp.sys_object_id", "snmp.sys_name", "smb.os", "smb.domain", "s7.module", "s7.serial",
	"enip.product_name", "enip.vendor_id", "enip.device_type", "enip.product_code", "enip.revision",
	"bacnet.vendor_id", "bacnet.model_name", "bacnet.object_name", "bacnet.device_instance",
	"dnp3.address", "iec104.common_address", "profinet.station_name", "profinet.vendor_id", "profinet.device_id",
	"opcua.application_uri", "opcua.product_uri",
	// Device classes.
	"rtu", "engineering", "historian", "drive", "io", "relay", "meter", "sensor",
	"bms", "robot", "safety", "firewall", "access-point", "server", "printer", "camera",
	"phone", "mobile", "iot", "medical",
	// Common values.
	"false", "Windows", "Linux", "VxWorks", "MSFT 5.0",
}

// dictionary returns the entries of version v (none for 0 or unknown).
func dictionary(v uint) []string {
	if v == 1 {
		return dictV1
	}
	return nil
}

var dictIndexV1 = func() map[string]int {
	m := make(map[string]int, len(dictV1))
	for i, s := range dictV1 {
		if _, dup := m[s]; dup {
			panic("uplink: dictionary entry twice: " + s)
		}
		m[s] = i
	}
	return m
}()

func dictIndex(v uint) map[string]int {
	if v == 1 {
		return dictIndexV1
	}
	return nil
}
