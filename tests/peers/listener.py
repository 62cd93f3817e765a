"""What every test peer here shares: a loopback listening socket whose connections are
each served in a thread of their own, until stop() (or the end of a with block)."""
import socket
import threading


class Listener:
    def __init__(self):
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)  # how often the accept loop looks for stop()
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(5)
        self._listener.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _accept(self):
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except socket.timeout:
                continue
            threading.Thread(target=self._serve, args=self._accepted(sock), daemon=True).start()

    def _accepted(self, sock):
        """The arguments of _serve for a new connection, worked out in the order they came."""
        return (sock,)

    def _serve(self, sock):
        raise NotImplementedError
