#!/usr/bin/python3
"""Runs test/oracle/cinder_posix.py's oracle() once, timing the driver alone.

    echo '<oracle request>' | /usr/bin/python3 -I bench/cinder_timed.py

Same input as the oracle. Imports everything oracle() imports first, then
times oracle(req) (configuration, the fake DB and the real
PosixBackupDriver backup/restore). Prints one JSON line:
{"result": <the oracle's answer>, "import_seconds": ..., "driver_seconds": ...}
or {"error": ..., "message": ...} and exits 3.
"""
import json
import logging
import os
import sys
import time

started = time.monotonic()
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'oracle'))

import cinder_posix  # noqa: E402
from cinder import objects  # noqa: E402
objects.register_all()
from eventlet import tpool  # noqa: E402,F401
from oslo_config import cfg  # noqa: E402,F401
from oslo_utils import timeutils  # noqa: E402,F401
from cinder.backup.drivers.posix import PosixBackupDriver  # noqa: E402,F401
from cinder.backup import manager  # noqa: E402,F401
from cinder import context, db, exception  # noqa: E402,F401
from cinder.volume import volume_utils  # noqa: E402,F401


def main():
    req = json.load(sys.stdin)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    imported = time.monotonic()
    try:
        out = cinder_posix.oracle(req)
    except Exception as e:  # noqa: E722
        print(json.dumps({'error': type(e).__name__, 'message': str(e)}))
        return 3
    finished = time.monotonic()
    print(json.dumps({'result': cinder_posix.to_json(out),
                      'import_seconds': imported - started,
                      'driver_seconds': finished - imported}, sort_keys=True))
    return 0


if __name__ == '__main__':
    sys.exit(main())
