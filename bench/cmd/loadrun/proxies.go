package main

import (
	"context"
	"debug/buildinfo"
	"encoding/base64"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/introspect-go/introspect/bench/internal/benchutil"
)

// The servers of -proxy on and -oathkeeper, all in front of one backend (a
// bare bench server): a bare httputil.ReverseProxy, introspect-proxy in
// reverse-proxy mode, nginx alone and nginx asking introspect-proxy in
// forward-auth mode (auth_request), and Ory Oathkeeper's proxy with its
// oauth2_introspection authenticator. The CPU of each counts every process
// of its chain, the backend's included.

// backend is the server behind the proxies: a bare bench server.
type backend struct {
	addr string // empty: none runs
	pid  int
}

func (r *runner) startBackend(ctx context.Context) (backend, error) {
	addr := benchutil.FreeAddr()
	cmd, err := r.startCmd(ctx, filepath.Join(r.o.bin, "server"), nil, nil, "-mode", "bare", "-addr", addr)
	if err != nil {
		return backend{}, err
	}
	if err := benchutil.WaitHTTP(ctx, "http://"+addr+"/", nil, true); err != nil {
		return backend{}, fmt.Errorf("backend: %w", err)
	}
	return backend{addr: addr, pid: cmd.Process.Pid}, nil
}

// proxyTargets starts the servers in front of the backend.
func (r *runner) proxyTargets(ctx context.Context, endpoint, caFile string, be backend) ([]target, error) {
	backendAddr, bpid := be.addr, be.pid
	upstream := "http://" + backendAddr
	var targets []target

	if r.o.proxy == "on" {
		// The bare httputil.ReverseProxy.
		addr := benchutil.FreeAddr()
		rp, err := r.startCmd(ctx, filepath.Join(r.o.bin, "server"), nil, nil, "-mode", "reverse", "-addr", addr, "-upstream", upstream)
		if err != nil {
			return nil, err
		}
		if err := benchutil.WaitHTTP(ctx, "http://"+addr+"/", nil, true); err != nil {
			return nil, fmt.Errorf("reverse proxy: %w", err)
		}
		rpid := rp.Process.Pid
		targets = append(targets, target{name: "httputil-rp", url: "http://" + addr, path: "/api",
			pids: func() []int { return []int{rpid, bpid} }})

		// The floors of the reverse-proxy hop.
		if r.o.floors == "on" {
			for _, f := range []struct{ name, mode string }{
				{"floor-rp", "floor-reverse"}, {"floor-rp-rt", "floor-reverse-rt"}, {"floor-rp-loop", "floor-reverse-loop"},
			} {
				addr, pid, err := r.startServer(ctx, f.mode, upstream)
				if err != nil {
					return nil, err
				}
				targets = append(targets, target{name: f.name, url: "http://" + addr, path: "/api",
					pids: func() []int { return []int{pid, bpid} }})
			}
		}

		// introspect-proxy, reverse-proxy mode.
		addr = benchutil.FreeAddr()
		ppid, err := r.startProxy(ctx, addr, endpoint, caFile, "-upstream", upstream)
		if err != nil {
			return nil, err
		}
		targets = append(targets, target{name: "proxy-reverse", url: "http://" + addr, path: "/api",
			pids: func() []int { return []int{ppid, bpid} }, auth: true})

		// nginx alone, and nginx → introspect-proxy in forward-auth mode.
		if nginx, err := lookNginx(); err != nil {
			log.Printf("nginx: not run: %v", err)
		} else {
			authAddr := benchutil.FreeAddr()
			fpid, err := r.startProxy(ctx, authAddr, endpoint, caFile, "-forward-auth", "-forward-auth-ingress", "nginx")
			if err != nil {
				return nil, err
			}
			// The same on a unix socket that nginx's workers (nobody) may open.
			sock := filepath.Join(r.dir, "auth.sock")
			upid, err := r.startProxy(ctx, "unix:"+sock, endpoint, caFile, "-forward-auth", "-forward-auth-ingress", "nginx", "-socket-mode", "0666")
			if err != nil {
				return nil, err
			}
			var floors []nginxAuth
			if r.o.floors == "on" {
				for _, f := range []nginxAuth{{name: "nginx+floor-auth", mode: "floor-auth"}, {name: "nginx+floor-auth-loop", mode: "floor-auth-loop"}, {name: "nginx+floor-auth-raw", mode: "floor-auth-raw"}} {
					if f.addr, f.pid, err = r.startServer(ctx, f.mode, ""); err != nil {
						return nil, err
					}
					floors = append(floors, f)
				}
			}
			ts, err := r.startNginx(ctx, nginx, backendAddr, authAddr, sock, bpid, fpid, upid, floors)
			if err != nil {
				return nil, fmt.Errorf("nginx: %w", err)
			}
			targets = append(targets, ts...)
		}
	}

	if r.o.oathkeeper != "" {
		t, err := r.startOathkeeper(ctx, endpoint, caFile, upstream, bpid)
		if err != nil {
			return nil, fmt.Errorf("oathkeeper: %w", err)
		}
		targets = append(targets, t)
	}
	return targets, nil
}

// startServer starts the bench server in mode on a free loopback address
// (in front of upstream when not empty) and returns the address and pid
// once it answers.
func (r *runner) startServer(ctx context.Context, mode, upstream string) (string, int, error) {
	addr := benchutil.FreeAddr()
	args := []string{"-mode", mode, "-addr", addr}
	if upstream != "" {
		args = append(args, "-upstream", upstream)
	}
	cmd, err := r.startCmd(ctx, filepath.Join(r.o.bin, "server"), nil, nil, args...)
	if err != nil {
		return "", 0, err
	}
	if err := benchutil.WaitHTTP(ctx, "http://"+addr+"/", nil, true); err != nil {
		return "", 0, fmt.Errorf("%s server: %w", mode, err)
	}
	return addr, cmd.Process.Pid, nil
}

// nginxAuth is a floor that nginx asks with auth_request, at /name.
type nginxAuth struct {
	name, mode, addr string
	pid              int
}

// startProxy starts introspect-proxy on addr with the extra arguments, the
// client secret in its environment and the stub's certificate as the only
// trusted one (SSL_CERT_FILE), access log off like the other servers', and
// returns its pid once it answers.
func (r *runner) startProxy(ctx context.Context, addr, endpoint, caFile string, args ...string) (int, error) {
	env := append(os.Environ(), "INTROSPECT_CLIENT_SECRET=rs-secret", "SSL_CERT_FILE="+caFile)
	args = append([]string{"-listen", addr, "-ops-listen", "off", "-endpoint", endpoint, "-client-id", "rs",
		"-access-log=false", "-log-level", "warn"}, args...)
	cmd, err := r.startCmd(ctx, filepath.Join(r.o.bin, "introspect-proxy"), nil, env, args...)
	if err != nil {
		return 0, err
	}
	if sock, ok := strings.CutPrefix(addr, "unix:"); ok {
		if err := benchutil.WaitUnix(ctx, sock); err != nil {
			return 0, fmt.Errorf("introspect-proxy %v: %w", args, err)
		}
		return cmd.Process.Pid, nil
	}
	if err := benchutil.WaitHTTP(ctx, "http://"+addr+"/", nil, true); err != nil {
		return 0, fmt.Errorf("introspect-proxy %v: %w", args, err)
	}
	return cmd.Process.Pid, nil
}

func lookNginx() (string, error) {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx", nil
	}
	return "", fmt.Errorf("nginx is not installed (scripts/deps.sh installs it)")
}

// nginxConf is nginx in front of the backend: /plain proxied as it is,
// everything else after an auth_request to introspect-proxy in forward-auth
// mode (as in cmd/introspect-proxy/testdata/nginx.conf.tmpl), with
// keep-alive connections to both; /unix the same with the proxy on a unix
// socket, /floorN with the floor N (nginxAuthRoute, startNginx).
const nginxConf = `# Written by bench/cmd/loadrun for one load run.
daemon off;
worker_processes 2;
pid {{dir}}/nginx.pid;
error_log {{dir}}/error.log warn;

events {
    worker_connections 1024;
}

http {
    access_log off;
    client_body_temp_path {{dir}}/client_body;
    proxy_temp_path {{dir}}/proxy;
    fastcgi_temp_path {{dir}}/fastcgi;
    uwsgi_temp_path {{dir}}/uwsgi;
    scgi_temp_path {{dir}}/scgi;

    upstream backend {
        server {{backend}};
        keepalive 128;
    }
{{authupstreams}}    server {
        listen {{addr}};
        keepalive_requests 1000000;

        location /plain {
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://backend;
        }

{{authlocations}}    }
}
`

// nginxAuthRoute is the pair of locations of one forward-auth server:
// requests under %[1]s go to the backend after an auth_request to the
// upstream %[2]s (its /auth), with the original method and URI in nginx's
// headers.
const nginxAuthRoute = `        location %[1]s {
            auth_request /_%[2]s;
            auth_request_set $auth_subject $upstream_http_x_auth_subject;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Auth-Subject $auth_subject;
            proxy_pass http://backend;
        }

        location = /_%[2]s {
            internal;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://%[2]s/auth;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Original-Method $request_method;
        }

`

// startNginx writes the configuration and starts nginx in the foreground,
// as nobody when this runs as root. It returns three targets on it: /plain
// (nginx alone), /api (nginx → introspect-proxy forward-auth on authAddr)
// and /unix (the same with the proxy on the socket authSock); and one
// target for each floor, asked by auth_request at /floorN.
func (r *runner) startNginx(ctx context.Context, nginx, backendAddr, authAddr, authSock string, bpid, fpid, upid int, floors []nginxAuth) ([]target, error) {
	dir := filepath.Join(r.dir, "nginx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	addr := benchutil.FreeAddr()
	// location, upstream name, server
	routes := [][3]string{{"/", "auth", authAddr}, {"/unix", "auth_unix", "unix:" + authSock}}
	for i, f := range floors {
		routes = append(routes, [3]string{fmt.Sprintf("/floor%d", i), fmt.Sprintf("floor%d", i), f.addr})
	}
	var ups, locs strings.Builder
	for _, rt := range routes {
		fmt.Fprintf(&ups, "    upstream %s {\n        server %s;\n        keepalive 128;\n    }\n", rt[1], rt[2])
		fmt.Fprintf(&locs, nginxAuthRoute, rt[0], rt[1])
	}
	conf := strings.NewReplacer("{{dir}}", dir, "{{addr}}", addr, "{{backend}}", backendAddr,
		"{{authupstreams}}", ups.String(), "{{authlocations}}", locs.String()).Replace(nginxConf)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		return nil, err
	}
	cred, err := r.asNobody(dir)
	if err != nil {
		return nil, err
	}
	cmd, err := r.startCmd(ctx, nginx, cred, nil, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log"))
	if err != nil {
		return nil, err
	}
	if err := benchutil.WaitHTTP(ctx, "http://"+addr+"/plain", nil, false); err != nil {
		logs, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		return nil, fmt.Errorf("%w; error.log: %s", err, logs)
	}
	parent := cmd.Process.Pid
	ngx := func() []int { return append([]int{parent}, children(parent)...) }
	ts := []target{
		{name: "nginx", url: "http://" + addr, path: "/plain", pids: func() []int { return append(ngx(), bpid) }},
		{name: "nginx+proxy-fwd", url: "http://" + addr, path: "/api", pids: func() []int { return append(ngx(), fpid, bpid) }, auth: true},
		{name: "nginx+proxy-unix", url: "http://" + addr, path: "/unix", pids: func() []int { return append(ngx(), upid, bpid) }, auth: true},
	}
	for i, f := range floors {
		ts = append(ts, target{name: f.name, url: "http://" + addr, path: fmt.Sprintf("/floor%d", i),
			pids: func() []int { return append(ngx(), f.pid, bpid) }})
	}
	return ts, nil
}

// asNobody returns the credential of nobody when this runs as root, after
// handing it the temporary directory and dir (and what dir holds); nil
// otherwise.
func (r *runner) asNobody(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, p := range []string{r.dir, dir} {
		if err := os.Chown(p, 65534, 65534); err != nil {
			return nil, err
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		_ = os.Chown(filepath.Join(dir, e.Name()), 65534, 65534)
	}
	return &syscall.Credential{Uid: 65534, Gid: 65534}, nil
}

// oathkeeperConf is Ory Oathkeeper's proxy on loopback: one rule for
// /api, the oauth2_introspection authenticator with its cache on (TTL 5 min,
// like the proxy's -max-ttl) and the client credentials as a Basic header
// (it has no client authentication of its own), the allow authorizer, and
// the header mutator passing the subject, like the proxy's X-Auth-Subject.
// Logging at warn, like the others' access logs off.
const oathkeeperConf = `# Written by bench/cmd/loadrun for one load run.
log:
  level: warn
serve:
  proxy:
    host: 127.0.0.1
    port: {{proxyport}}
  api:
    host: 127.0.0.1
    port: {{apiport}}
  prometheus:
    host: 127.0.0.1
    port: {{promport}}
access_rules:
  matching_strategy: glob
  repositories:
    - file://{{dir}}/rules.json
authenticators:
  oauth2_introspection:
    enabled: true
    config:
      introspection_url: {{endpoint}}
      introspection_request_headers:
        authorization: "Basic {{basic}}"
      cache:
        enabled: true
        ttl: 5m
        max_cost: 100000
authorizers:
  allow:
    enabled: true
mutators:
  header:
    enabled: true
    config:
      headers:
        X-Auth-Subject: "{{ print .Subject }}"
`

const oathkeeperRules = `[{
  "id": "api",
  "match": {"url": "http://{{addr}}/api", "methods": ["GET"]},
  "upstream": {"url": "{{upstream}}", "preserve_host": true},
  "authenticators": [{"handler": "oauth2_introspection"}],
  "authorizer": {"handler": "allow"},
  "mutators": [{"handler": "header"}]
}]
`

func (r *runner) startOathkeeper(ctx context.Context, endpoint, caFile, upstream string, bpid int) (target, error) {
	dir := filepath.Join(r.dir, "oathkeeper")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return target{}, err
	}
	addr, api, prom := benchutil.FreeAddr(), benchutil.FreeAddr(), benchutil.FreeAddr()
	port := func(a string) string { _, p, _ := net.SplitHostPort(a); return p }
	basic := base64.StdEncoding.EncodeToString([]byte("rs:rs-secret"))
	conf := strings.NewReplacer("{{proxyport}}", port(addr), "{{apiport}}", port(api), "{{promport}}", port(prom),
		"{{dir}}", dir, "{{endpoint}}", endpoint, "{{basic}}", basic).Replace(oathkeeperConf)
	rules := strings.NewReplacer("{{addr}}", addr, "{{upstream}}", upstream).Replace(oathkeeperRules)
	for name, body := range map[string]string{"config.yaml": conf, "rules.json": rules} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return target{}, err
		}
	}
	// SSL_CERT_FILE: the stub's certificate is the only one trusted.
	env := append(os.Environ(), "SSL_CERT_FILE="+caFile)
	cmd, err := r.startCmd(ctx, r.o.oathkeeper, nil, env, "serve", "--config", filepath.Join(dir, "config.yaml"), "--sqa-opt-out")
	if err != nil {
		return target{}, err
	}
	if err := benchutil.WaitHTTP(ctx, "http://"+api+"/health/ready", nil, false); err != nil {
		return target{}, err
	}
	pid := cmd.Process.Pid
	return target{name: "oathkeeper", url: "http://" + addr, path: "/api",
		pids: func() []int { return []int{pid, bpid} }, auth: true}, nil
}

// proxyChecks adds the targets of introspect-proxy to the report, where
// their servers ran: on a cached token, in either mode, at least 2×
// mod_auth_openidc's (serving its static file, and in front of the backend
// with mod_proxy) and 3× Oathkeeper's requests/s at no more than 0.5× their
// CPU per request; in reverse-proxy mode, at least 0.8× the
// requests/s of a bare httputil.ReverseProxy in front of the same backend.
// nginx+proxy-fwd against nginx alone is reported, with no target.
func (r *runner) proxyChecks(check func(name, measured string, ok bool), byKey map[string]result) {
	for _, srv := range []string{"proxy-reverse", "nginx+proxy-fwd", "nginx+proxy-unix"} {
		p, ok := byKey["cached/"+srv]
		if !ok {
			continue
		}
		for _, peer := range []struct {
			name, label string
			rps         float64
		}{{"apache-oidc", "mod_auth_openidc (static file)", 2}, {"apache-oidc-rp", "mod_auth_openidc + mod_proxy", 2}, {"oathkeeper", "Oathkeeper", 3}} {
			q, ok := byKey["cached/"+peer.name]
			if !ok {
				continue
			}
			check(fmt.Sprintf("%s, cached token: ≥ %.0f× %s req/s", srv, peer.rps, peer.label),
				fmt.Sprintf("%s (%.0f vs %.0f)", ratio(p.rps, q.rps), p.rps, q.rps), p.rps >= peer.rps*q.rps)
			check(fmt.Sprintf("%s, cached token: ≤ 0.5× %s CPU/req", srv, peer.label),
				fmt.Sprintf("%s (%.1f vs %.1f µs)", ratio(p.cpuPerReq, q.cpuPerReq), p.cpuPerReq, q.cpuPerReq), p.cpuPerReq <= 0.5*q.cpuPerReq)
		}
	}
	for _, sc := range []string{"cached", "herd"} {
		p, ok1 := byKey[sc+"/proxy-reverse"]
		q, ok2 := byKey[sc+"/httputil-rp"]
		if ok1 && ok2 {
			check(fmt.Sprintf("proxy-reverse, %s: ≥ 0.8× a bare httputil.ReverseProxy's req/s", sc),
				fmt.Sprintf("%s (%.0f vs %.0f)", ratio(p.rps, q.rps), p.rps, q.rps), p.rps >= 0.8*q.rps)
		}
	}
}

// proxyNotes are lines under the targets: nginx+proxy-fwd against nginx
// alone, which has no target.
func proxyNotes(byKey map[string]result, scenarios []scenario) string {
	var b strings.Builder
	for _, sc := range scenarios {
		for _, srv := range []string{"nginx+proxy-fwd", "nginx+proxy-unix"} {
			p, ok1 := byKey[sc.name+"/"+srv]
			q, ok2 := byKey[sc.name+"/nginx"]
			if ok1 && ok2 {
				fmt.Fprintf(&b, "- %s: %s serves %s the requests/s of nginx alone at %s its CPU per request (no target).\n",
					sc.name, srv, ratio(p.rps, q.rps), ratio(p.cpuPerReq, q.cpuPerReq))
			}
		}
	}
	return b.String()
}

// oathkeeperNote describes the oathkeeper server, if it runs.
func oathkeeperNote(path string) string {
	if path == "" {
		return ""
	}
	return "`oathkeeper` = Ory Oathkeeper's proxy " + oathkeeperVersion(path) +
		", one rule, `oauth2_introspection` with its cache on (TTL 5 min), `allow`, `header` mutator, log level warn. "
}

// oathkeeperVersion is the module version the Oathkeeper binary was built
// from, as its build information says.
func oathkeeperVersion(path string) string {
	if path == "" {
		return ""
	}
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return "(version unknown)"
	}
	if bi.Main.Path == "github.com/ory/oathkeeper" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	for _, d := range bi.Deps {
		if d.Path == "github.com/ory/oathkeeper" {
			return d.Version
		}
	}
	return "(version unknown)"
}
