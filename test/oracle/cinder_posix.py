#!/usr/bin/python3
"""Test oracle: drive OpenStack Cinder's real PosixBackupDriver.

Run with Debian's interpreter (python3-cinder lives in its dist-packages):

    echo '{"op": "backup", ...}' | /usr/bin/python3 test/oracle/cinder_posix.py

Reads ONE JSON object on stdin, writes ONE JSON object (one line) on stdout.
Logging goes to stderr (WARNING and up; CINDER_ORACLE_DEBUG=1 for DEBUG).
Exit 0 on success; any exception while setting up or running Cinder prints
{"error": "<ExceptionClassName>", "message": "..."} and exits 3; unreadable
input or an unknown op prints {"error": "BadInput", ...} and exits 2.

Input keys: op (backup|restore|delete|export|import), backup_path,
compression, chunk_size, sha_block_size, timestamp (YYYYmmddHHMMSS, frozen
utcnow), backup (record: id, volume_id, parent_id, container,
service_metadata, display_name, display_description, created_at (ISO), size,
status, availability_zone; optional object_count, service, user_id,
project_id, ...), backups (other records, for parent lookups), volume_path,
volume_size_gib, volume_meta (string or null), record (import only).
Missing status defaults to creating (backup), restoring (restore) or
available (delete/export).  Unset options keep Cinder's defaults.

Output:   backup  -> every field of the record after the driver ran (ISO
                     datetimes) + "progress": backup_percent values notified
          restore -> {"restored": true, "volume_meta": [strings put, in order]}
          delete  -> {"deleted": true}
          export  -> {"backup_service": ..., "backup_url": ...}
          import  -> the dict returned by Backup.decode_record(backup_url)

Only persistence is faked: cinder.db.get_by_id / backup_update / volume_get
work on an in-memory table, so the real Backup.get_by_id, refresh, save and
_from_db_object run (created_at is stored naive UTC like a DB row; the
object's DateTimeField makes it tz-aware, so str() is
"2026-11-26 04:04:46+00:00").  Notifications and volume-metadata DB writes
are no-ops.  eventlet is not monkey patched; tpool uses real OS threads.
"""
import datetime
import json
import logging
import os
import sys

OPS = ('backup', 'restore', 'delete', 'export', 'import')
POSIX_DRIVER = 'cinder.backup.drivers.posix.PosixBackupDriver'


def to_json(value):
    """JSON-friendly copy of a value (datetimes -> ISO strings)."""
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return value


def oracle(req):
    op = req['op']
    # register_all() must precede importing e.g. the backup manager, which
    # references objects.* at import time.
    from cinder import objects
    objects.register_all()
    from eventlet import tpool
    from oslo_config import cfg
    from oslo_utils import timeutils
    from cinder.backup.drivers.posix import PosixBackupDriver
    from cinder.backup import manager as backup_manager
    from cinder import context as cinder_context
    from cinder import db
    from cinder import exception
    from cinder.volume import volume_utils

    if op == 'import':
        return objects.Backup.decode_record(req['record']['backup_url'])

    # ---- configuration (never reads /etc/cinder) ---------------------------
    CONF = cfg.CONF
    CONF([], project='cinder', default_config_files=[],
         default_config_dirs=[])
    rec = dict(req['backup'])
    overrides = {
        'backup_posix_path': req.get('backup_path'),
        'backup_file_size': req.get('chunk_size'),
        'backup_sha_block_size_bytes': req.get('sha_block_size'),
        'backup_compression_algorithm': req.get('compression'),
        'storage_availability_zone': rec.get('availability_zone'),
        'backup_enable_progress_timer': False,
        'backup_driver': POSIX_DRIVER,
    }
    for name, value in overrides.items():
        if value is not None:
            CONF.set_override(name, value)

    # ---- frozen clock: _generate_object_name_prefix uses utcnow() ----------
    if req.get('timestamp'):
        timeutils.set_time_override(
            datetime.datetime.strptime(req['timestamp'], '%Y%m%d%H%M%S'))

    # ---- in-memory "DB": backup id -> row dict ------------------------------
    table = {}

    def add_row(r):
        row = {name: r.get(name) for name in objects.Backup.fields}
        for name in ('created_at', 'updated_at', 'data_timestamp'):
            if r.get(name):  # naive UTC, like sqlalchemy returns it
                row[name] = timeutils.normalize_time(
                    timeutils.parse_isotime(r[name]))
        row.update(deleted_at=None, deleted=False, backup_metadata=[],
                   user_id=r.get('user_id') or 'oracle-user',
                   project_id=r.get('project_id') or 'oracle-project',
                   service=r.get('service', POSIX_DRIVER))
        table[row['id']] = row

    for r in req.get('backups') or []:
        add_row(r)
    rec.setdefault('status', {'backup': 'creating',
                              'restore': 'restoring'}.get(op, 'available'))
    add_row(rec)

    def fake_get_by_id(ctxt, model, id, *args, **kwargs):
        if id not in table:
            raise exception.BackupNotFound(backup_id=id)
        return dict(table[id])

    def fake_backup_update(ctxt, backup_id, values):
        table[backup_id].update(values)

    db.get_by_id = fake_get_by_id          # Backup.get_by_id / refresh
    db.backup_update = fake_backup_update  # Backup.save
    db.volume_get = lambda ctxt, vid, *a, **k: {
        'id': vid, 'size': req.get('volume_size_gib', rec.get('size') or 1)}
    db.dispose_engine = lambda: None       # called by db.base.Base.__init__

    # ---- notifications: keep only the progress percentages -----------------
    progress = []

    def fake_notify(ctxt, backup, suffix, extra_usage_info=None, host=None):
        if extra_usage_info and 'backup_percent' in extra_usage_info:
            progress.append(extra_usage_info['backup_percent'])
    volume_utils.notify_about_backup_usage = fake_notify

    # ---- driver with a stubbed BackupMetadataAPI ----------------------------
    put_calls = []

    def make_driver(context):
        drv = PosixBackupDriver(context)
        api = drv.backup_meta_api
        api.get = lambda volume_id: req.get('volume_meta')
        # Keep the real put() (JSON parse + version check raising
        # BackupMetadataUnsupportedVersion); only its DB writes are no-ops.
        for name in ('_restore_vol_base_meta', '_restore_vol_meta',
                     '_restore_vol_glance_meta'):
            setattr(api, name, lambda *a, **k: None)
        real_put = api.put

        def put(volume_id, json_metadata):
            put_calls.append(json_metadata)
            real_put(volume_id, json_metadata)
        api.put = put
        return drv

    ctxt = cinder_context.get_admin_context()
    backup = objects.Backup.get_by_id(ctxt, rec['id'])

    if op == 'backup':
        # As manager._run_backup: open(path, 'rb') wrapped in tpool.Proxy.
        with open(req['volume_path'], 'rb') as f:
            make_driver(ctxt).backup(backup, tpool.Proxy(f))
        saved = objects.Backup.get_by_id(ctxt, rec['id'])  # re-read "DB"
        out = {name: getattr(saved, name) for name in objects.Backup.fields
               if name not in ('parent', 'metadata')}
        out['progress'] = progress
        return out
    if op == 'restore':
        # NOTE: manager._run_restore opens with 'wb' on posix (truncating a
        # regular file); we use 'r+b' so the target keeps its size.
        with open(req['volume_path'], 'r+b') as f:
            make_driver(ctxt).restore(backup, backup.volume_id,
                                      tpool.Proxy(f))
        return {'restored': True, 'volume_meta': put_calls}
    if op == 'delete':
        make_driver(ctxt).delete_backup(backup)
        return {'deleted': True}
    # op == 'export': the real BackupManager.export_record (status check,
    # _is_our_backup, driver.export_record, Backup.encode_record), on an
    # instance built without __init__ (which would set up RPC/DB).
    mgr = backup_manager.BackupManager.__new__(backup_manager.BackupManager)
    mgr.driver_name = POSIX_DRIVER
    mgr.service = make_driver
    return mgr.export_record(ctxt, backup)


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
    except Exception as e:  # report Cinder's exception class and message
        logging.getLogger('oracle').debug('failed', exc_info=True)
        print(json.dumps({'error': type(e).__name__, 'message': str(e)}))
        return 3
    print(json.dumps(to_json(out), sort_keys=True))
    return 0


if __name__ == '__main__':
    sys.exit(main())
