"""Runs the moto emulator on a free loopback port for one test process.

Prints the port on stdout once the server listens, then serves until its parent process exits
(or stdin closes), so a crashed or killed test run never leaves an emulator behind.

The EKS operations moto lacks come from moto_eks_ext.py beside this file; EKS_WARDEN_EMULATOR_PLAIN=1
serves plain moto instead (what eks-warden must still cope with: those operations answer 404).
"""
import os
import sys
import threading
import time
import logging

from moto.moto_server.threaded_moto_server import ThreadedMotoServer


def main() -> None:
    # moto answers 500 for a few unknown names (ListNodegroups of a missing cluster); the client sees
    # that, the test log need not show the traceback. EKS_WARDEN_EMULATOR_VERBOSE=1 shows it.
    if not os.environ.get("EKS_WARDEN_EMULATOR_VERBOSE"):
        logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    if not os.environ.get("EKS_WARDEN_EMULATOR_PLAIN"):
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import moto_eks_ext

        moto_eks_ext.install()
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    print(server.get_host_and_port()[1], flush=True)
    parent = os.getppid()

    def stdin_closed() -> None:
        try:
            sys.stdin.read()
        except Exception:
            pass
        os._exit(0)

    if not sys.stdin.isatty():
        threading.Thread(target=stdin_closed, daemon=True).start()
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


if __name__ == "__main__":
    main()
