# server.py: the zoo protocol (zoo.h) from CPython's threading server (a thread per
# connection, the GIL passed between them).
import os
import socketserver
import sys
import threading


def total(n):
    v = [(i * i) % 7919 for i in range(n * 100)]
    return sum(v)


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(f"{os.getpid()} {total(int(line))}\n".encode())
            self.wfile.flush()


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


server = Server(("127.0.0.1", 0), Handler)
print(f"pid {os.getpid()}\nport {server.server_address[1]}\nready", flush=True)
threading.Thread(target=server.serve_forever, daemon=True).start()
for line in sys.stdin:
    if line.strip() == "exit":
        break
