#!/usr/bin/python3
"""Seeds the loopback Keystone of scripts/swift-loopback.sh, in-process.

Run by Debian's /usr/bin/python3 after `keystone-manage db_sync`:

    keystone-loopback-setup.py CONFIG_FILE KEYSTONE_URL ADMIN_PASSWORD
                               SWIFT_URL_TEMPLATE PROJECT USER PASSWORD

Does what `keystone-manage bootstrap` does (admin user, project and roles,
RegionOne, the identity service and endpoint) and then adds the
object-store service with public/internal/admin endpoints at
SWIFT_URL_TEMPLATE (e.g. http://127.0.0.1:8080/v1/KEY_%(project_id)s), a
project and a user with the member role on it. Through Keystone's own
managers rather than its HTTP API: Keystone on SQLite answers concurrent
admin writes with "database is locked", and this is one process start
instead of several.
"""
import sys
import uuid

from keystone.cmd import bootstrap
from keystone.common import provider_api
import keystone.server

conf_file, keystone_url, admin_password, swift_url, project, user, password = sys.argv[1:]
del sys.argv[1:]  # oslo.config would parse them
keystone.server.configure(config_files=[conf_file])
PROVIDERS = provider_api.ProviderAPIs

b = bootstrap.Bootstrapper()
b.admin_username = 'admin'
b.admin_password = admin_password
b.project_name = 'admin'
b.admin_role_name = 'admin'
b.service_name = 'keystone'
b.region_id = 'RegionOne'
b.public_url = keystone_url
b.bootstrap()

service_id = uuid.uuid4().hex
PROVIDERS.catalog_api.create_service(service_id, {
    'id': service_id, 'name': 'swift', 'type': 'object-store', 'enabled': True})
for interface in ('public', 'internal', 'admin'):
    endpoint_id = uuid.uuid4().hex
    PROVIDERS.catalog_api.create_endpoint(endpoint_id, {
        'id': endpoint_id, 'interface': interface, 'url': swift_url,
        'service_id': service_id, 'region_id': 'RegionOne', 'enabled': True})

project_id = uuid.uuid4().hex
PROVIDERS.resource_api.create_project(project_id, {
    'id': project_id, 'name': project, 'domain_id': b.default_domain_id,
    'enabled': True, 'description': 'chunked-backup tests'})
created = PROVIDERS.identity_api.create_user({
    'name': user, 'domain_id': b.default_domain_id, 'enabled': True,
    'password': password})
PROVIDERS.assignment_api.add_role_to_user_and_project(
    user_id=created['id'], project_id=project_id, role_id=b.member_role_id)
