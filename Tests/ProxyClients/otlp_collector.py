#!/usr/bin/env python3
"""A minimal OTLP/HTTP collector for the proxy tests: accepts POST /v1/traces (http/json) and
appends each request body, one JSON document per line, to OUTFILE.

Usage: otlp_collector.py PORT OUTFILE
"""
import http.server
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if self.path == "/v1/traces":
            with open(sys.argv[2], "ab") as out:
                out.write(body.replace(b"\n", b" ") + b"\n")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *arguments):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
