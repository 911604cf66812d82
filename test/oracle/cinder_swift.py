#!/usr/bin/python3
"""Test oracle: drive OpenStack Cinder's real SwiftBackupDriver.

Run with Debian's interpreter (python3-cinder and python3-swiftclient live in
its dist-packages), against a running Swift with auth v1 (tempauth):

    echo '{"op": "backup", ...}' | /usr/bin/python3 -I test/oracle/cinder_swift.py

Reads ONE JSON object on stdin, writes ONE JSON object (one line) on stdout,
like test/oracle/cinder_posix.py (whose to_json it reuses). Exit 0 on
success; a failure prints {"error": "<ExceptionClassName>", "message": ...}
and exits 3; unreadable input exits 2.

Input keys: op (backup|restore), swift {auth_url, user, key} (Cinder's
backup_swift_auth = single_user, backup_swift_auth_version = 1,
backup_swift_auth_url/user/key), container (backup_swift_container),
compression, chunk_size (backup_swift_object_size), sha_block_size
(backup_swift_block_size), timestamp (YYYYmmddHHMMSS, frozen utcnow for the
object-name prefix), backup (the record: id, volume_id, parent_id,
container, service_metadata, display_name, display_description,
created_at, size, status, availability_zone, ...), backups (parents),
volume_path, volume_size_gib.

Output:   backup  -> every field of the record after the driver ran
          restore -> {"restored": true}

Only persistence is faked (an in-memory backups table behind
cinder.db.get_by_id / backup_update / volume_get); the driver, swiftclient
and Swift are real. Volume metadata is absent (BackupMetadataAPI.get returns
None); the posix oracle covers it.
"""
import datetime
import json
import logging
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ next to the oracles
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cinder_posix import to_json  # noqa: E402

OPS = ('backup', 'restore')
SWIFT_DRIVER = 'cinder.backup.drivers.swift.SwiftBackupDriver'


def oracle(req):
    op = req['op']
    from cinder import objects
    objects.register_all()
    from eventlet import tpool
    from oslo_config import cfg
    from oslo_utils import timeutils
    from cinder.backup.drivers.swift import SwiftBackupDriver
    from cinder import context as cinder_context
    from cinder import db
    from cinder import exception
    from cinder.volume import volume_utils

    # ---- configuration (never reads /etc/cinder) ---------------------------
    CONF = cfg.CONF
    CONF([], project='cinder', default_config_files=[],
         default_config_dirs=[])
    rec = dict(req['backup'])
    swift = req['swift']
    overrides = {
        'backup_swift_auth': 'single_user',
        'backup_swift_auth_version': '1',
        'backup_swift_auth_url': swift['auth_url'],
        'backup_swift_user': swift['user'],
        'backup_swift_key': swift['key'],
        'backup_swift_container': req.get('container'),
        'backup_swift_object_size': req.get('chunk_size'),
        'backup_swift_block_size': req.get('sha_block_size'),
        'backup_compression_algorithm': req.get('compression'),
        'storage_availability_zone': rec.get('availability_zone'),
        'backup_swift_enable_progress_timer': False,
        'backup_swift_retry_attempts': 1,
        'backup_swift_retry_backoff': 1,
    }
    for name, value in overrides.items():
        if value is not None:
            CONF.set_override(name, value)

    if req.get('timestamp'):
        timeutils.set_time_override(
            datetime.datetime.strptime(req['timestamp'], '%Y%m%d%H%M%S'))

    # ---- in-memory "DB": backup id -> row dict ------------------------------
    table = {}

    def add_row(r):
        row = {name: r.get(name) for name in objects.Backup.fields}
        for name in ('created_at', 'updated_at', 'data_timestamp'):
            if r.get(name):
                row[name] = timeutils.normalize_time(
                    timeutils.parse_isotime(r[name]))
        row.update(deleted_at=None, deleted=False, backup_metadata=[],
                   user_id=r.get('user_id') or 'oracle-user',
                   project_id=r.get('project_id') or 'oracle-project',
                   service=r.get('service', SWIFT_DRIVER))
        table[row['id']] = row

    for r in req.get('backups') or []:
        add_row(r)
    rec.setdefault('status', 'creating' if op == 'backup' else 'restoring')
    add_row(rec)

    def fake_get_by_id(ctxt, model, id, *args, **kwargs):
        if id not in table:
            raise exception.BackupNotFound(backup_id=id)
        return dict(table[id])

    def fake_backup_update(ctxt, backup_id, values):
        table[backup_id].update(values)

    db.get_by_id = fake_get_by_id
    db.backup_update = fake_backup_update
    db.volume_get = lambda ctxt, vid, *a, **k: {
        'id': vid, 'size': req.get('volume_size_gib', rec.get('size') or 1)}
    db.dispose_engine = lambda: None
    volume_utils.notify_about_backup_usage = lambda *a, **k: None

    # A context with a user: SwiftBackupDriver connects only then.
    ctxt = cinder_context.RequestContext(
        user_id='oracle-user', project_id='oracle-project', is_admin=True)
    drv = SwiftBackupDriver(ctxt)
    api = drv.backup_meta_api
    api.get = lambda volume_id: None
    for name in ('_restore_vol_base_meta', '_restore_vol_meta',
                 '_restore_vol_glance_meta'):
        setattr(api, name, lambda *a, **k: None)

    backup = objects.Backup.get_by_id(ctxt, rec['id'])
    if op == 'backup':
        with open(req['volume_path'], 'rb') as f:
            drv.backup(backup, tpool.Proxy(f))
        saved = objects.Backup.get_by_id(ctxt, rec['id'])
        return {name: getattr(saved, name) for name in objects.Backup.fields
                if name not in ('parent', 'metadata')}
    with open(req['volume_path'], 'r+b') as f:
        drv.restore(backup, backup.volume_id, tpool.Proxy(f))
    return {'restored': True}


def main():
    try:
        req = json.load(sys.stdin)
        if not isinstance(req, dict) or req.get('op') not in OPS:
            raise ValueError('expected a JSON object with op in %s' % (OPS,))
    except Exception as e:  # noqa: E722
        print(json.dumps({'error': 'BadInput', 'message': str(e)}))
        return 2
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if os.environ.get('CINDER_ORACLE_DEBUG')
        else logging.WARNING)
    try:
        out = oracle(req)
    except Exception as e:
        logging.getLogger('oracle').debug('failed', exc_info=True)
        print(json.dumps({'error': type(e).__name__, 'message': str(e)}))
        return 3
    print(json.dumps(to_json(out), sort_keys=True))
    return 0


if __name__ == '__main__':
    sys.exit(main())
