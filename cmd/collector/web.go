package main

import (
	"html/template"
	"net/http"
)

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Passive sensor collector</title>
<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;margin-bottom:2em}
td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%;text-align:left}th{background:#eee}</style></head>
<body><h1>Passive sensor collector</h1>
<p>JSON: <a href="/api/sensors">/api/sensors</a> <a href="/api/devices">/api/devices</a>
<a href="/api/assets">/api/assets</a> <a href="/api/traffic">/api/traffic</a> <a href="/api/events">/api/events</a>
<a href="/api/updates">/api/updates</a></p>
<h2>Sensors ({{len .Sensors}})</h2>
<table><tr><th>id</th><th>version</th><th>board</th><th>registered</th><th>last seen</th><th>batches</th><th>last update step</th></tr>
{{range .Sensors}}<tr><td>{{.ID}}</td><td>{{.Version}}</td><td>{{.Board}}</td><td>{{.Registered.Format "2006-01-02 15:04"}}</td><td>{{if not .LastSeen.IsZero}}{{.LastSeen.Format "2006-01-02 15:04:05"}}{{end}}</td><td>{{.Batches}}</td><td>{{with .Update}}{{.Version}} {{.Phase}} (slot {{.Slot}}, {{.Time.Format "2006-01-02 15:04:05"}}){{if .Detail}}: {{.Detail}}{{end}}{{end}}</td></tr>
{{end}}</table>
<h2>Updates ordered ({{len .Orders}})</h2>
<table><tr><th>for</th><th>version</th><th>board</th><th>artefact</th><th>published</th></tr>
{{range .Orders}}<tr><td>{{.Scope}} {{.Target}}</td><td>{{.Version}}</td><td>{{.Board}}</td><td>{{.Artefact}}</td><td>{{.Published.Format "2006-01-02 15:04:05"}}</td></tr>
{{end}}</table>
<h2>Devices ({{len .Devices}}, after de-duplication across sensors)</h2>
<table><tr><th>kind</th><th>MAC</th><th>IPs</th><th>hostname</th><th>vendor</th><th>model</th><th>firmware</th><th>class</th><th>protocols</th><th>last seen</th><th>records</th></tr>
{{range .Devices}}<tr><td>{{.Kind}}</td><td>{{.MAC}}</td><td>{{range .IPs}}{{.}} {{end}}</td><td>{{.Hostname}}</td><td>{{.Vendor}}</td><td>{{.Model}}</td><td>{{.Firmware}}</td><td>{{.Class}}</td><td>{{range .Protocols}}{{.}} {{end}}</td><td>{{.LastSeen.Format "2006-01-02 15:04:05"}}</td><td>{{range .Assets}}{{.}}<br>{{end}}</td></tr>
{{end}}</table>
<h2>Traffic ({{len .Traffic}} aggregates)</h2>
<table><tr><th>sensor</th><th>source</th><th>destination</th><th>port</th><th>bytes out</th><th>bytes in</th><th>packets out</th><th>packets in</th></tr>
{{range .Traffic}}<tr><td>{{.Sensor}}</td><td>{{.Src}} {{.SrcAsset}}</td><td>{{.Dst}} {{.DstAsset}}</td><td>{{.DPort}}/{{.Proto}}</td><td>{{.BytesOut}}</td><td>{{.BytesIn}}</td><td>{{.PacketsOut}}</td><td>{{.PacketsIn}}</td></tr>
{{end}}</table>
<h2>Events</h2>
<table><tr><th>sensor</th><th>time</th><th>kind</th><th>detail</th><th>count</th></tr>
{{range .Events}}<tr><td>{{.Sensor}}</td><td>{{.Time.Format "2006-01-02 15:04:05"}}</td><td>{{.Kind}}</td><td>{{.Detail}}</td><td>{{.Count}}</td></tr>
{{end}}</table>
</body></html>
`))

// maxPageRows bounds the traffic rows on the page (the JSON API has all).
const maxPageRows = 500

func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var data struct {
		Sensors []SensorJSON
		Orders  []UpdateOrderJSON
		Devices []DeviceJSON
		Traffic []TrafficJSON
		Events  []EventJSON
	}
	var err error
	if data.Sensors, err = s.Store.Sensors(ctx); err == nil {
		var recs []AssetJSON
		if recs, err = s.Store.Assets(ctx, ""); err == nil {
			data.Devices, err = s.devices(recs)
		}
	}
	if err == nil {
		data.Orders, err = s.Store.Orders(ctx)
	}
	if err == nil {
		data.Traffic, err = s.Store.Traffic(ctx, "")
	}
	if err == nil {
		data.Events, err = s.Store.Events(ctx, "")
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if len(data.Traffic) > maxPageRows {
		data.Traffic = data.Traffic[:maxPageRows]
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	pageTmpl.Execute(w, data)
}
