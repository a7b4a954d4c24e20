# A dev server for the port-preview tests, run by the agent inside the sandbox: a page, a
# server-sent-events stream held open until /release, a 50 MB download made on the fly, and
# a WebSocket echo (the handshake and framing by hand: the sandbox has only the standard
# library).
import base64, hashlib, http.server, socketserver, struct, sys, threading

released = threading.Event()
BIG = 50 * 1024 * 1024


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.headers.get("Upgrade", "").lower() == "websocket":
            return self.websocket()
        if self.path == "/sse":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            self.wfile.write(b"data: first\n\n")
            self.wfile.flush()
            released.wait(120)
            self.wfile.write(b"data: second\n\n")
            return
        if self.path == "/release":
            released.set()
            return self.text("released")
        if self.path == "/big":
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(BIG))
            self.end_headers()
            chunk = b"x" * 65536
            for _ in range(BIG // len(chunk)):
                self.wfile.write(chunk)
            return
        if self.path.startswith("/echo-headers"):
            return self.text("cookie=%s host=%s" % (self.headers.get("Cookie"), self.headers.get("Host")))
        self.text("<h1>hello from the sandbox</h1> path=%s" % self.path, "text/html")

    def text(self, body, kind="text/plain"):
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def websocket(self):
        key = self.headers["Sec-WebSocket-Key"]
        accept = base64.b64encode(
            hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
        ).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                return
            opcode, length = head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                length = struct.unpack(">H", self.rfile.read(2))[0]
            elif length == 127:
                length = struct.unpack(">Q", self.rfile.read(8))[0]
            mask = self.rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(length)))
            if opcode == 8:
                self.wfile.write(b"\x88\x00")
                return
            reply = b"echo: " + payload
            if len(reply) < 126:
                frame = bytes([0x81, len(reply)])
            else:
                frame = bytes([0x81, 126]) + struct.pack(">H", len(reply))
            self.wfile.write(frame + reply)
            self.wfile.flush()


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


Server(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
