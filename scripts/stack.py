#!/usr/bin/python3
"""stack.py: starts and stops the whole bcrm system on one machine.

Two users:

* the system tests in tests/e2e/ (run by ctest with BCRM_BUILD_DIR and
  BCRM_SOURCE_DIR set):

      sys.path.insert(0, os.path.join(os.environ['BCRM_SOURCE_DIR'], 'scripts'))
      from stack import Stack
      with Stack() as s:              # temp work dir, free ports everywhere
          s.start_postgres()          # throwaway cluster, sets BCRM_DATABASE_URL
          s.make_keys()               # identity keys, vault master key, allowlist
          s.start_all(sender_replicas=2)
          status, headers, body = s.api('POST', '/v1/signup', {...})
          codes = s.stop()            # SIGTERM in reverse order: {'api': 0, ...}

* `make run` (`python3 scripts/stack.py run`): the same system with its state kept
  in ./var, a demo account, the Slack simulator with a connected demo bot and a demo
  campaign delivered to it. Ctrl-C stops everything cleanly.

PostgreSQL runs as a private cluster: listen_addresses is empty, so the server is
reachable only through its Unix socket, in a directory of mode 0700 that only the
cluster's owner (and root) can enter. Local connections use `trust` inside that
boundary; TCP connections, were they ever enabled, would need a password. When run
as root, the cluster belongs to the `postgres` user and every PostgreSQL command
runs through `runuser -u postgres --`.

Python 3 standard library only.
"""

import atexit
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Services in start order; stop() goes the other way. The senders come last
# because they dial the scheduler, the api and the vault.
SERVICES = ['vault', 'scheduler', 'api', 'sender-slack', 'sender-messenger']
SENDERS = ('sender-slack', 'sender-messenger')
# Each service that holds database credentials connects as its own role
# (db/migrations/0004_db_roles.sql, docs/vault.md "Database roles"); the senders
# get none. Migrations are applied once, as the cluster's owner, by
# `bcrmctl migrate` before the first service starts (_migrate).
DB_ROLES = {'vault': 'bcrm_vault', 'api': 'bcrm_api', 'scheduler': 'bcrm_scheduler'}

# Defaults from docs/architecture.md, used by `make run` when the port is free.
DEFAULT_OPS_PORTS = {'api': 9180, 'scheduler': 9181, 'vault': 9182, 'sender-slack': 9183,
                     'sender-messenger': 9184}
BUS_URLS = {  # variable: default port
    'BCRM_VAULT_URL': 7100,
    'BCRM_SCHEDULER_WORK_SLACK_URL': 7110,
    'BCRM_SCHEDULER_WORK_MESSENGER_URL': 7111,
    'BCRM_SCHEDULER_RESULTS_URL': 7112,
    'BCRM_SCHEDULER_QUERY_SLACK_URL': 7113,
    'BCRM_SCHEDULER_QUERY_MESSENGER_URL': 7114,
    'BCRM_API_QUERY_SLACK_URL': 7120,
    'BCRM_API_QUERY_MESSENGER_URL': 7121,
}
DEFAULT_API_PORT = 8080

# The platform simulators: binary, the variable naming their listen address, its
# default port, and the bcrm variable that points the senders at them.
SIMULATORS = {
    'slack-sim': {'binary': 'sim/slack-sim/slack-sim', 'addr_var': 'SLACK_SIM_ADDR',
                  'port': 8090, 'url_var': 'BCRM_SLACK_API_URL', 'path': '/api'},
    'messenger-sim': {'binary': 'sim/messenger-sim/messenger-sim',
                      'addr_var': 'MESSENGER_SIM_ADDR', 'port': 8091,
                      'url_var': 'BCRM_GRAPH_API_URL', 'path': '/v19.0'},
}

# Which identity key each process loads; both sender replicas share their role's key.
IDENTITY_ROLES = ['vault', 'api', 'sender-slack', 'sender-messenger', 'ops']
ALLOWLIST_ROLES = ['api', 'sender-slack', 'sender-messenger', 'ops']

READY_TIMEOUT_S = 90  # a sanitizer build on 2 busy cores starts slowly
STOP_TIMEOUT_S = 45


class StackError(Exception):
    pass


def _log(msg):
    print(f'stack: {msg}', file=sys.stderr, flush=True)


def is_root():
    return os.geteuid() == 0


def port_is_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(('127.0.0.1', port))
        except OSError:
            return False
        return True


def tail(path, lines=40):
    try:
        with open(path, 'r', errors='replace') as f:
            return ''.join(f.readlines()[-lines:])
    except OSError as e:
        return f'(cannot read {path}: {e})'


def http_request(url, method='GET', body=None, headers=None, timeout=30):
    """One HTTP request. Returns (status, headers with lower-case names, body), the
    body parsed as JSON when the answer says it is JSON, else text. Header values
    that repeat (Set-Cookie) are kept as a list under '_all'."""
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            hdrs.setdefault('Content-Type', 'application/json')
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = body
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        resp = e
    with resp:
        raw = resp.read()
        status = resp.status if hasattr(resp, 'status') else resp.code
        out_headers = {k.lower(): v for k, v in resp.headers.items()}
        out_headers['_all'] = resp.headers.items()
    ctype = out_headers.get('content-type', '')
    text = raw.decode('utf-8', errors='replace')
    if 'json' in ctype and raw:
        try:
            return status, out_headers, json.loads(text)
        except ValueError:
            pass
    return status, out_headers, text


class Postgres:
    """A private PostgreSQL cluster in base_dir (data/, sock/, postgres.log)."""

    def __init__(self, base_dir, durable):
        self.base_dir = base_dir
        self.data_dir = os.path.join(base_dir, 'data')
        self.sock_dir = os.path.join(base_dir, 'sock')
        self.log_file = os.path.join(base_dir, 'postgres.log')
        self.durable = durable
        self.bin_dir = self.find_bin_dir()
        self.user = 'postgres'  # the cluster's superuser name, also for a normal user
        self.running = False

    @staticmethod
    def find_bin_dir():
        root = '/usr/lib/postgresql'
        versions = []
        if os.path.isdir(root):
            for name in os.listdir(root):
                if os.path.exists(os.path.join(root, name, 'bin', 'initdb')):
                    try:
                        versions.append((int(name.split('.')[0]), name))
                    except ValueError:
                        pass
        if not versions:
            found = shutil.which('initdb')
            if found:
                return os.path.dirname(found)
            raise StackError('cannot find initdb under /usr/lib/postgresql/*/bin '
                             '(run scripts/deps.sh)')
        return os.path.join(root, max(versions)[1], 'bin')

    def _as_owner(self, argv):
        if is_root():
            return ['runuser', '-u', 'postgres', '--'] + argv
        return argv

    def _run(self, argv, **kw):
        res = subprocess.run(self._as_owner(argv), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, **kw)
        if res.returncode != 0:
            raise StackError(f'{os.path.basename(argv[0])} failed (exit {res.returncode}):\n'
                             f'{res.stdout}')
        return res.stdout

    def _own(self, path):
        if is_root():
            shutil.chown(path, 'postgres', 'postgres')

    def _prepare_dirs(self):
        os.makedirs(self.base_dir, exist_ok=True)
        os.chmod(self.base_dir, 0o700)
        self._own(self.base_dir)
        os.makedirs(self.sock_dir, exist_ok=True)
        os.chmod(self.sock_dir, 0o700)
        self._own(self.sock_dir)
        if is_root():
            # The postgres user must reach base_dir through every parent.
            res = subprocess.run(['runuser', '-u', 'postgres', '--', 'test', '-w',
                                  self.base_dir])
            if res.returncode != 0:
                raise StackError(f'user postgres cannot reach {self.base_dir}: a parent '
                                 'directory is not searchable')

    def _write_conf(self):
        def q(v):
            return "'" + v.replace("'", "''") + "'"

        lines = [
            '# Written by scripts/stack.py at every start.',
            "listen_addresses = ''",
            f'unix_socket_directories = {q(self.sock_dir)}',
            'unix_socket_permissions = 0700',
            "timezone = 'UTC'",
            'max_connections = 200',
        ]
        if not self.durable:
            lines += ['fsync = off', 'synchronous_commit = off', 'full_page_writes = off']
        path = os.path.join(self.data_dir, 'bcrm.conf')
        with open(path, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        self._own(path)
        main_conf = os.path.join(self.data_dir, 'postgresql.conf')
        with open(main_conf) as f:
            has_include = "include 'bcrm.conf'" in f.read()
        if not has_include:
            with open(main_conf, 'a') as f:
                f.write("\ninclude 'bcrm.conf'\n")

    def start(self):
        self._prepare_dirs()
        if not os.path.exists(os.path.join(self.data_dir, 'PG_VERSION')):
            # trust for local (Unix socket) connections only; see the module comment.
            self._run([os.path.join(self.bin_dir, 'initdb'), '-D', self.data_dir,
                       '-U', self.user, '--auth-local=trust', '--auth-host=scram-sha-256',
                       '-E', 'UTF8', '--locale=C.UTF-8', '--no-instructions'])
        self._write_conf()
        self._run([os.path.join(self.bin_dir, 'pg_ctl'), 'start', '-w', '-t', '60',
                   '-D', self.data_dir, '-l', self.log_file])
        self.running = True
        exists = self.psql('postgres', "SELECT 1 FROM pg_database WHERE datname = 'bcrm'")
        if not exists.strip():
            self.psql('postgres', 'CREATE DATABASE bcrm')

    def stop(self):
        if not self.running:
            return
        self.running = False
        try:
            self._run([os.path.join(self.bin_dir, 'pg_ctl'), 'stop', '-w', '-t', '60',
                       '-m', 'fast', '-D', self.data_dir])
        except StackError as e:
            _log(f'stopping PostgreSQL: {e}')

    def url(self, db='bcrm', user=None):
        host = urllib.parse.quote(self.sock_dir, safe='/')
        return f'postgresql:///{db}?host={host}&user={user or self.user}'

    def psql(self, db, query):
        res = subprocess.run(['psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
                              '-d', self.url(db), '-c', query],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if res.returncode != 0:
            raise StackError(f'psql: {res.stderr.strip()}')
        return res.stdout


class Process:
    """One running service process (a replica of a service, or the simulator)."""

    def __init__(self, name, replica, argv, env, log_path, ready_url):
        self.name = name
        self.replica = replica
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.ready_url = ready_url
        self.popen = None
        self.returncode = None

    @property
    def key(self):
        return self.name if self.replica == 0 else f'{self.name}#{self.replica}'

    def spawn(self, cwd):
        log = open(self.log_path, 'ab')
        try:
            # A session of its own: Ctrl-C in the terminal reaches stack.py only,
            # which then stops the services in order.
            self.popen = subprocess.Popen(self.argv, env=self.env, cwd=cwd, stdout=log,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          start_new_session=True)
        finally:
            log.close()
        self.returncode = None

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def check_ready(self):
        try:
            status, _, _ = http_request(self.ready_url, timeout=2)
            return status == 200
        except Exception:  # refused, reset, half an answer: not ready yet
            return False


class Stack:
    def __init__(self, work_dir=None, build_dir=None, mode='test'):
        """mode 'test': a temp work dir and free ports, removed by stop().
        mode 'run': work_dir kept (./var), default ports where free, the
        environment's BCRM_* variables override ours."""
        self.mode = mode
        self.source_dir = os.environ.get('BCRM_SOURCE_DIR', SOURCE_DIR)
        self.build_dir = os.path.abspath(build_dir or os.environ.get('BCRM_BUILD_DIR')
                                         or os.path.join(self.source_dir, 'build'))
        self.temp = work_dir is None
        self.work_dir = os.path.abspath(work_dir or tempfile.mkdtemp(prefix='bcrm-stack-'))
        os.makedirs(self.work_dir, exist_ok=True)
        # Traversable (not listable) so the postgres user can reach its cluster.
        os.chmod(self.work_dir, 0o711)
        self.logs_dir = os.path.join(self.work_dir, 'logs')
        self.keys_dir = os.path.join(self.work_dir, 'keys')
        os.makedirs(self.logs_dir, exist_ok=True)
        self.keep = bool(os.environ.get('BCRM_KEEP_STACK'))
        self.pg = None
        self.procs = {}  # key -> Process
        self.order = []  # keys in start order
        self.cookies = {}
        self.csrf_token = None
        self.stopped = False
        self._ports = set()
        self.external = {k: v for k, v in os.environ.items() if k.startswith('BCRM_')
                         and k not in ('BCRM_BUILD_DIR', 'BCRM_SOURCE_DIR',
                                       'BCRM_KEEP_STACK')}
        self.env = {}
        # Variables for one process only (the sandbox's secrets, wire_sandbox); the
        # environment's BCRM_* variables still win in 'run' mode.
        self.proc_env = {}
        self._assign_addresses()
        atexit.register(self._atexit)

    # ---- addresses ----------------------------------------------------------

    def free_port(self, preferred=None):
        if preferred is not None and self.mode == 'run' and preferred not in self._ports \
                and port_is_free(preferred):
            self._ports.add(preferred)
            return preferred
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind(('127.0.0.1', 0))
                port = sock.getsockname()[1]
            if port not in self._ports:
                self._ports.add(port)
                return port
        raise StackError('cannot find a free port')

    def _assign_addresses(self):
        env = self.env
        for var, default in BUS_URLS.items():
            env[var] = f'tcp://127.0.0.1:{self.free_port(default)}'
        env['BCRM_API_ADDR'] = f'127.0.0.1:{self.free_port(DEFAULT_API_PORT)}'
        # Tests always point the senders at the simulators' addresses, started or
        # not, so that nothing a test does can ever reach a real platform.
        self.sim_addrs = {}
        for name, sim in SIMULATORS.items():
            self.sim_addrs[name] = f'127.0.0.1:{self.free_port(sim["port"])}'
            env[sim['url_var']] = f'http://{self.sim_addrs[name]}{sim["path"]}'
        if self.mode == 'test':
            # Argon2id at its interactive cost takes a long time under ASan; tests
            # only need it to work.
            env['BCRM_PASSWORD_HASH_COST'] = 'min'
        self.ops_addrs = {}  # (name, replica) -> addr
        env.update(self.external if self.mode == 'run' else {})

    def ops_addr(self, name, replica=0):
        key = (name, replica)
        if key not in self.ops_addrs:
            default = DEFAULT_OPS_PORTS.get(name) if replica == 0 else None
            self.ops_addrs[key] = f'127.0.0.1:{self.free_port(default)}'
        return self.ops_addrs[key]

    def ops_url(self, name, replica=0):
        if name in SIMULATORS:
            return f'http://{self.sim_addrs[name]}'
        return f'http://{self.ops_addr(name, replica)}'

    @property
    def api_url(self):
        return f'http://{self.env["BCRM_API_ADDR"]}'

    @property
    def sim_url(self):
        return f'http://{self.sim_addrs["slack-sim"]}'

    @property
    def msim_url(self):
        return f'http://{self.sim_addrs["messenger-sim"]}'

    def uses_simulator(self, name):
        """make run leaves a simulator out where the environment names a platform URL
        (the real platform, or another stand-in)."""
        return self.mode == 'test' or SIMULATORS[name]['url_var'] not in self.external

    @property
    def uses_slack_sim(self):
        return self.uses_simulator('slack-sim')

    # ---- PostgreSQL and keys ------------------------------------------------

    def _pg_base_dir(self):
        local = os.path.join(self.work_dir, 'pg')
        if not is_root():
            return local
        # As root the cluster belongs to postgres, which must be able to walk to it.
        # A checkout under /root is not reachable: then the cluster lives in
        # /var/tmp/bcrm-<hash of the work dir>/pg, stable for this checkout.
        parent = os.path.dirname(local)
        res = subprocess.run(['runuser', '-u', 'postgres', '--', 'test', '-x', parent])
        if res.returncode == 0:
            return local
        digest = hashlib.sha256(self.work_dir.encode()).hexdigest()[:12]
        base = os.path.join('/var/tmp' if self.mode == 'run' else '/tmp', f'bcrm-{digest}')
        os.makedirs(base, exist_ok=True)
        os.chmod(base, 0o711)
        return os.path.join(base, 'pg')

    def start_postgres(self):
        if 'BCRM_DATABASE_URL' in self.external and self.mode == 'run':
            self.env['BCRM_DATABASE_URL'] = self.external['BCRM_DATABASE_URL']
            return
        self.pg = Postgres(self._pg_base_dir(), durable=(self.mode == 'run'))
        if len(self.pg.sock_dir) > 90:
            raise StackError(f'socket directory path too long for a Unix socket: '
                             f'{self.pg.sock_dir}')
        self.pg.start()
        self.env['BCRM_DATABASE_URL'] = self.pg.url()

    def bcrmctl_path(self):
        return os.path.join(self.build_dir, 'tools', 'bcrmctl', 'bcrmctl')

    def _key_path(self, role):
        return os.path.join(self.keys_dir, f'{role}.key')

    def make_keys(self):
        """Identity keys for every role, the vault's master key and its allowlist.
        Existing files are kept (make run reuses them: the master key must outlive
        a restart or every stored token is lost)."""
        tool = self.bcrmctl_path()
        if not os.access(tool, os.X_OK):
            raise StackError(f'{tool} not found: build the bcrmctl target first')
        os.makedirs(self.keys_dir, exist_ok=True)
        os.chmod(self.keys_dir, 0o700)
        publics = {}
        for role in IDENTITY_ROLES:
            path = self._key_path(role)
            pub_path = path + '.pub'
            if os.path.exists(path) and os.path.exists(pub_path):
                with open(pub_path) as f:
                    publics[role] = f.read().strip()
                continue
            if os.path.exists(path):
                os.unlink(path)
            res = subprocess.run([tool, 'keygen', path], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
            if res.returncode != 0:
                raise StackError(f'bcrmctl keygen {path} failed: {res.stderr.strip()}')
            publics[role] = res.stdout.strip().split()[-1]
            with open(pub_path, 'w') as f:
                f.write(publics[role] + '\n')
        master = os.path.join(self.keys_dir, 'master.key')
        if not os.path.exists(master):
            res = subprocess.run([tool, 'masterkey', master], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
            if res.returncode != 0:
                raise StackError(f'bcrmctl masterkey {master} failed: {res.stderr.strip()}')
        for path in [self._key_path(r) for r in IDENTITY_ROLES] + [master]:
            os.chmod(path, 0o600)
        allowlist = os.path.join(self.keys_dir, 'allowlist')
        with open(allowlist, 'w') as f:
            for role in ALLOWLIST_ROLES:
                f.write(f'{role} {publics[role]}\n')
        self.public_keys = publics
        self.env['BCRM_VAULT_PUBLIC_KEY'] = publics['vault']
        self.env['BCRM_VAULT_ALLOWLIST_FILE'] = allowlist
        self.env['BCRM_VAULT_MASTER_KEY_FILE'] = master
        if self.mode == 'run':
            for var in ('BCRM_VAULT_PUBLIC_KEY', 'BCRM_VAULT_ALLOWLIST_FILE',
                        'BCRM_VAULT_MASTER_KEY_FILE'):
                if var in self.external:
                    self.env[var] = self.external[var]

    def wire_sandbox(self):
        """make run's sandbox: the simulators sign their webhooks with secrets that
        the api knows and post them to the api (Slack events; Messenger messages,
        deliveries and reads), and slack-sim is the Slack app of "Add to Slack"
        (OAuth). Each secret is made once and kept in keys/ (mode 0600); the api reads
        its secrets from those files (NAME_FILE), never from its environment."""
        def secret(name, make=lambda: secrets.token_hex(16)):
            return _secret_file(os.path.join(self.keys_dir, name), make)

        def add(name, **variables):
            self.proc_env.setdefault(name, {}).update(variables)

        api = self.api_url
        if self.uses_simulator('slack-sim'):
            signing = secret('slack-signing-secret')
            client_id = secret('slack-client-id', lambda: f'{secrets.randbelow(10**10):010d}.'
                                                          f'{secrets.randbelow(10**10):010d}')
            client_secret = secret('slack-client-secret')
            add('slack-sim', SLACK_SIM_SIGNING_SECRET=signing,
                SLACK_SIM_EVENTS_URL=f'{api}/v1/webhooks/slack/events',
                SLACK_SIM_CLIENT_ID=client_id, SLACK_SIM_CLIENT_SECRET=client_secret)
            add('api', BCRM_SLACK_SIGNING_SECRET_FILE=os.path.join(self.keys_dir,
                                                                   'slack-signing-secret'),
                BCRM_SLACK_CLIENT_ID=client_id,
                BCRM_SLACK_OAUTH_AUTHORIZE_URL=f'{self.sim_url}/oauth/v2/authorize')
            add('sender-slack', BCRM_SLACK_CLIENT_ID=client_id,
                BCRM_SLACK_CLIENT_SECRET=client_secret)
        if self.uses_simulator('messenger-sim'):
            app_secret = secret('messenger-app-secret')
            verify = secret('messenger-verify-token')
            # Delivery and read receipts after each send, so the demo's deliveries
            # turn `read` as people read them.
            add('messenger-sim', MESSENGER_SIM_APP_SECRET=app_secret,
                MESSENGER_SIM_VERIFY_TOKEN=verify, MESSENGER_SIM_RECEIPTS='on',
                MESSENGER_SIM_WEBHOOK_URL=f'{api}/v1/webhooks/messenger')
            add('api', BCRM_MESSENGER_APP_SECRET_FILE=os.path.join(self.keys_dir,
                                                                   'messenger-app-secret'),
                BCRM_MESSENGER_VERIFY_TOKEN_FILE=os.path.join(self.keys_dir,
                                                              'messenger-verify-token'))

    # ---- processes ----------------------------------------------------------

    def binary(self, name):
        if name in SIMULATORS:
            return os.path.join(self.build_dir, SIMULATORS[name]['binary'])
        return os.path.join(self.build_dir, 'services', name, f'bcrm-{name}')

    def _base_env(self):
        # The parent's environment less its BCRM_* variables (a developer's shell
        # must not leak ports into a test), then the stack's own.
        env = {k: v for k, v in os.environ.items() if not k.startswith('BCRM_')}
        env.update(self.env)
        return env

    def process_env(self, name, replica=0, extra=None):
        env = self._base_env()
        if name in SIMULATORS:
            env[SIMULATORS[name]['addr_var']] = self.sim_addrs[name]
        else:
            env['BCRM_OPS_ADDR'] = self.ops_addr(name, replica)
            role = name
            # Per process, whatever the environment says: one address or key file
            # cannot serve every process.
            env['BCRM_IDENTITY_KEY_FILE'] = self._key_path(role)
            # Our own cluster: each service on its own database role. (An external
            # BCRM_DATABASE_URL in `make run` is used as given.)
            if self.pg is not None and name in DB_ROLES:
                env['BCRM_DATABASE_URL'] = self.pg.url(user=DB_ROLES[name])
            elif name in SENDERS:
                env.pop('BCRM_DATABASE_URL', None)
        env.update({k: v for k, v in self.proc_env.get(name, {}).items()
                    if k not in self.external and k.removesuffix('_FILE') not in self.external})
        env.update(extra or {})
        return env

    def _migrate(self):
        """Applies the migrations as the cluster's owner, once, before the first
        service starts: the services' own roles may not change the schema."""
        if self.pg is None or getattr(self, '_migrated', False):
            return
        env = self._base_env()
        env['BCRM_DATABASE_URL'] = self.pg.url()
        res = subprocess.run([self.bcrmctl_path(), 'migrate'], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        if res.returncode != 0:
            raise StackError(f'bcrmctl migrate failed (exit {res.returncode}):\n{res.stdout}')
        self._migrated = True

    def start(self, name, replica=0, env=None, wait=True):
        """Starts one process (a service replica, 'slack-sim' or 'messenger-sim') and,
        with wait, waits for its readiness. env: extra variables for this process."""
        if name not in SIMULATORS and name not in SERVICES:
            raise StackError(f'unknown service {name}')
        path = self.binary(name)
        if not os.access(path, os.X_OK):
            raise StackError(f'{path} not found: build it first')
        if name in DB_ROLES:
            self._migrate()
        penv = self.process_env(name, replica, env)
        suffix = '' if replica == 0 else f'-{replica}'
        log_path = os.path.join(self.logs_dir, f'{name}{suffix}.log')
        if name in SIMULATORS:
            ready_url = f'http://{penv[SIMULATORS[name]["addr_var"]]}/healthz'
        else:
            ready_url = f'http://{penv["BCRM_OPS_ADDR"]}/readyz'
        proc = Process(name, replica, [path], penv, log_path, ready_url)
        if proc.key in self.procs and self.procs[proc.key].alive():
            raise StackError(f'{proc.key} is already running')
        proc.spawn(self.work_dir)
        self.procs[proc.key] = proc
        if proc.key in self.order:
            self.order.remove(proc.key)
        self.order.append(proc.key)
        self.stopped = False
        if wait:
            self.wait_ready([proc])
        return proc

    def wait_ready(self, procs, timeout=READY_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        pending = list(procs)
        while pending:
            for proc in list(pending):
                if not proc.alive():
                    code = proc.popen.poll()
                    raise StackError(f'{proc.key} exited with status {code} while starting; '
                                     f'last lines of {proc.log_path}:\n{tail(proc.log_path)}')
                if proc.check_ready():
                    pending.remove(proc)
            if not pending:
                return
            if time.monotonic() > deadline:
                msgs = [f'{p.key} not ready at {p.ready_url} after {timeout}s; last lines of '
                        f'{p.log_path}:\n{tail(p.log_path)}' for p in pending]
                raise StackError('\n'.join(msgs))
            time.sleep(0.1)

    def start_all(self, sender_replicas=1, messenger_replicas=None, slack_sim=True,
                  sim_env=None, messenger_sim=True, msim_env=None):
        """Starts the simulators (unless told not to; sim_env and msim_env are their
        extra variables), every service, sender_replicas replicas of sender-slack
        and messenger_replicas (default: the same) of sender-messenger, then waits
        until all are ready."""
        if self.pg is None and 'BCRM_DATABASE_URL' not in self.env:
            self.start_postgres()
        if 'BCRM_VAULT_PUBLIC_KEY' not in self.env:
            self.make_keys()
        if messenger_replicas is None:
            messenger_replicas = sender_replicas
        started = []
        if slack_sim and self.uses_simulator('slack-sim'):
            started.append(self.start('slack-sim', env=sim_env, wait=False))
        if messenger_sim and self.uses_simulator('messenger-sim'):
            started.append(self.start('messenger-sim', env=msim_env, wait=False))
        for name in SERVICES:
            count = {'sender-slack': sender_replicas,
                     'sender-messenger': messenger_replicas}.get(name, 1)
            for replica in range(count):
                started.append(self.start(name, replica, wait=False))
        self.wait_ready(started)
        return started

    def kill(self, name, replica=0, sig=signal.SIGKILL):
        """Sends sig to one process; for SIGKILL and SIGTERM waits for it to end and
        returns its exit status (negative: the signal). start() may run it again."""
        proc = self.procs[name if replica == 0 else f'{name}#{replica}']
        proc.popen.send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            return proc.popen.wait(timeout=STOP_TIMEOUT_S)
        return None

    def log(self, name, replica=0):
        suffix = '' if replica == 0 else f'-{replica}'
        path = os.path.join(self.logs_dir, f'{name}{suffix}.log')
        with open(path, errors='replace') as f:
            return f.read()

    def stop(self):
        """SIGTERM every process, services in reverse start order (all replicas of a
        service at once), waiting for each to drain. Returns {key: exit status}
        (key: the service name, 'name#N' for replica N > 0; a negative status is
        the signal that ended it). Then stops PostgreSQL and removes a temp work
        dir unless keep is set."""
        codes = {}
        groups = []
        for key in reversed(self.order):
            name = self.procs[key].name
            if groups and groups[-1][0] == name:
                groups[-1][1].append(self.procs[key])
            else:
                groups.append((name, [self.procs[key]]))
        for _, procs in groups:
            for proc in procs:
                if proc.alive():
                    proc.popen.send_signal(signal.SIGTERM)
            for proc in procs:
                if proc.popen is None:
                    continue
                try:
                    code = proc.popen.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    _log(f'{proc.key} did not exit {STOP_TIMEOUT_S}s after SIGTERM; killing it')
                    proc.popen.kill()
                    proc.popen.wait()
                    code = 'timeout'
                codes[proc.key] = code
        if self.pg is not None:
            self.pg.stop()
        self.stopped = True
        if self.temp and not self.keep:
            self.cleanup()
        elif self.temp:
            _log(f'kept work dir {self.work_dir}')
        return codes

    def cleanup(self):
        shutil.rmtree(self.work_dir, ignore_errors=True)
        if self.pg is not None and not self.pg.base_dir.startswith(self.work_dir):
            shutil.rmtree(os.path.dirname(self.pg.base_dir), ignore_errors=True)

    def _atexit(self):
        if not self.stopped and (self.procs or (self.pg and self.pg.running)):
            for proc in self.procs.values():
                if proc.alive():
                    proc.popen.kill()
            if self.pg is not None:
                self.pg.stop()
            if self.temp and not self.keep:
                self.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.keep = True  # the logs explain the failure
            for key in self.order:
                _log(f'--- last lines of {key} ({self.procs[key].log_path}) ---\n'
                     f'{tail(self.procs[key].log_path, 25)}')
        if not self.stopped:
            self.stop()
        return False

    # ---- clients ------------------------------------------------------------

    def api(self, method, path, body=None, headers=None):
        """A request to the REST API with a cookie jar: cookies set by the api are
        sent back (Python's own jar refuses Secure cookies over http, which
        browsers accept on localhost). State-changing requests carry Origin and
        the CSRF token from the last login."""
        hdrs = {'Accept': 'application/json'}
        if self.cookies:
            hdrs['Cookie'] = '; '.join(f'{k}={v}' for k, v in self.cookies.items())
        if method not in ('GET', 'HEAD'):
            hdrs['Origin'] = self.api_url
            if self.csrf_token:
                hdrs['X-CSRF-Token'] = self.csrf_token
        hdrs.update(headers or {})
        status, rh, parsed = http_request(self.api_url + path, method, body, hdrs)
        for name, value in rh.pop('_all'):
            if name.lower() == 'set-cookie':
                self._store_cookie(value)
        if isinstance(parsed, dict) and isinstance(parsed.get('csrf_token'), str):
            self.csrf_token = parsed['csrf_token']
        return status, rh, parsed

    def _store_cookie(self, header):
        parts = [p.strip() for p in header.split(';')]
        if '=' not in parts[0]:
            return
        name, value = parts[0].split('=', 1)
        attrs = {p.split('=', 1)[0].lower(): (p.split('=', 1)[1] if '=' in p else '')
                 for p in parts[1:]}
        if value == '' or attrs.get('max-age', '1').lstrip('-').isdigit() and \
                int(attrs.get('max-age', '1')) <= 0:
            self.cookies.pop(name, None)
        else:
            self.cookies[name] = value

    def sim(self, method, path, body=None):
        """A request to the Slack simulator (its /_sim/ control endpoints)."""
        status, rh, parsed = http_request(self.sim_url + path, method, body)
        rh.pop('_all', None)
        return status, rh, parsed

    def msim(self, method, path, body=None):
        """A request to the Messenger simulator."""
        status, rh, parsed = http_request(self.msim_url + path, method, body)
        rh.pop('_all', None)
        return status, rh, parsed

    def ops(self, name, path, replica=0):
        status, rh, parsed = http_request(self.ops_url(name, replica) + path)
        rh.pop('_all', None)
        return status, rh, parsed

    def sql(self, query):
        """Rows of the last statement, each a tuple of strings (None for NULL)."""
        res = subprocess.run(['psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
                              '-F', '\x1f', '-R', '\x1e', '-P', 'null=\x1d',
                              '-d', self.env['BCRM_DATABASE_URL'], '-c', query],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if res.returncode != 0:
            raise StackError(f'psql: {res.stderr.strip()}')
        out = res.stdout
        if out.endswith('\n'):
            out = out[:-1]
        rows = []
        for rec in out.split('\x1e'):
            if rec == '':
                continue
            rows.append(tuple(None if f == '\x1d' else f for f in rec.split('\x1f')))
        return rows

    def pg_dump(self):
        """The whole database as SQL text (data included)."""
        res = subprocess.run(['pg_dump', '--no-owner', '-d', self.env['BCRM_DATABASE_URL']],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if res.returncode != 0:
            raise StackError(f'pg_dump: {res.stderr.strip()}')
        return res.stdout

    def bcrmctl(self, *args):
        """Runs bcrmctl with the ops identity. Returns the CompletedProcess."""
        env = self._base_env()
        env['BCRM_IDENTITY_KEY_FILE'] = self._key_path('ops')
        return subprocess.run([self.bcrmctl_path()] + list(args), env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# ---- make run -----------------------------------------------------------------

DEMO_EMAIL = 'demo@bcrm.local'


def _secret_file(path, make):
    """The content of path, created with make() and mode 0600 on first use."""
    if os.path.exists(path):
        with open(path) as f:
            return f.read().strip()
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write(value + '\n')
    return value


def _expect(what, result, *ok):
    status, _, body = result
    if status not in ok:
        raise StackError(f'{what}: HTTP {status}: {body}')
    return body


def _demo_setup(s):
    password = _secret_file(os.path.join(s.work_dir, 'demo-password'),
                            lambda: secrets.token_urlsafe(12))
    res = s.api('POST', '/v1/login', {'email': DEMO_EMAIL, 'password': password})
    if res[0] == 200:
        org_id = res[2]['orgs'][0]['id']
    else:
        body = _expect('signup', s.api('POST', '/v1/signup', {
            'name': 'Demo', 'email': DEMO_EMAIL, 'password': password,
            'org_name': 'Demo org'}), 201)
        org_id = body['org']['id']
        # A fresh login gives the CSRF token for the requests below.
        _expect('login', s.api('POST', '/v1/login',
                               {'email': DEMO_EMAIL, 'password': password}), 200)
    info = {'password': password, 'org_id': org_id}
    if 'messenger-sim' in s.procs:
        info['page_bot_id'] = _demo_messenger_page(s, org_id)
    if not s.uses_slack_sim:
        return info
    _, _, ws = s.sim('GET', '/_sim/workspaces')
    workspaces = ws.get('workspaces', ws) if isinstance(ws, dict) else ws
    workspace = workspaces[0]
    token = workspace.get('bot_token') or workspace.get('token')
    team_id = workspace.get('team_id') or workspace.get('id')
    bots = _expect('list bots', s.api('GET', f'/v1/orgs/{org_id}/bots'), 200)['bots']
    bot_id = None
    for bot in bots:
        if bot.get('platform') == 'slack' and bot.get('team_id') == team_id:
            probe = s.api('GET', f'/v1/orgs/{org_id}/bots/{bot["id"]}/users?limit=1')
            if probe[0] == 200:
                bot_id = bot['id']
                break
            # The simulator's token changed since the last run: connect again.
            s.api('DELETE', f'/v1/orgs/{org_id}/bots/{bot["id"]}')
    if bot_id is None:
        bot = _expect('connect the demo Slack bot', s.api(
            'POST', f'/v1/orgs/{org_id}/bots', {'platform': 'slack', 'token': token}), 201)
        bot_id = bot['id']
    campaign = _expect('create the demo campaign', s.api(
        'POST', f'/v1/orgs/{org_id}/campaigns', {
            'name': 'Welcome (make run)', 'bot_id': bot_id,
            'message': {'text': 'Welcome to bcrm, {{first_name|there}}!'},
            'audience': {'filter': {'all': True}},
            'schedule': {'mode': 'now'}}), 201)
    _expect('schedule the demo campaign', s.api(
        'POST', f'/v1/orgs/{org_id}/campaigns/{campaign["id"]}/schedule'), 200, 201, 202, 204)
    api_key = _secret_file(os.path.join(s.work_dir, 'demo-api-key'), lambda: _expect(
        'create an API key', s.api('POST', f'/v1/orgs/{org_id}/api-keys',
                                   {'name': 'make run'}), 201)['key'])
    info.update(bot_id=bot_id, campaign_id=campaign['id'], api_key=api_key)
    return info


def _demo_messenger_page(s, org_id):
    """Connects the Messenger simulator's first page (once). Returns its bot id."""
    _, _, body = s.msim('GET', '/_sim/pages')
    page = body['pages'][0]
    bots = _expect('list bots', s.api('GET', f'/v1/orgs/{org_id}/bots'), 200)['bots']
    for bot in bots:
        if bot.get('platform') == 'messenger' and bot.get('page_id') == page['page_id']:
            return bot['id']
    bot = _expect('connect the demo Messenger page', s.api(
        'POST', f'/v1/orgs/{org_id}/bots', {'platform': 'messenger',
                                            'page_token': page['token']}), 201)
    return bot['id']


DEMO_WAIT_S = 120


def _demo_wait(s, info):
    """Waits until the demo campaign has ended (or DEMO_WAIT_S) and says how it went."""
    if 'campaign_id' not in info:
        return None
    path = f'/v1/orgs/{info["org_id"]}/campaigns/{info["campaign_id"]}'
    deadline = time.monotonic() + DEMO_WAIT_S
    campaign = {}
    while time.monotonic() < deadline:
        status, _, campaign = s.api('GET', path)
        if status == 200 and campaign.get('status') in ('completed', 'cancelled'):
            break
        time.sleep(0.5)
    stats = campaign.get('stats', {})
    parts = ', '.join(f'{stats[k]} {k}' for k in ('sent', 'failed', 'unknown', 'skipped',
                                                   'pending') if stats.get(k))
    return f'{campaign.get("status", "unknown")} ({parts or "no recipients"})'


def _parse_run_args(argv):
    """run [--var-dir DIR]: DIR holds the state (default ./var of the checkout)."""
    work_dir = os.path.join(SOURCE_DIR, 'var')
    rest = list(argv)
    while rest:
        arg = rest.pop(0)
        if arg == '--var-dir' and rest:
            work_dir = os.path.abspath(rest.pop(0))
        else:
            raise StackError(f'run: unknown argument {arg!r} (usage: run [--var-dir DIR])')
    return work_dir


def run(argv):
    work_dir = _parse_run_args(argv)
    os.makedirs(work_dir, exist_ok=True)
    s = Stack(work_dir=work_dir, mode='run')
    stopping = []

    def on_signal(signum, frame):
        stopping.append(signum)
        raise KeyboardInterrupt

    # SIGINT explicitly too: a shell that starts us in the background has set it
    # to ignored, and Python then installs no KeyboardInterrupt handler.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        print('bcrm: starting PostgreSQL', flush=True)
        s.start_postgres()
        s.make_keys()
        s.wire_sandbox()
        print('bcrm: starting the services', flush=True)
        msim = os.access(s.binary('messenger-sim'), os.X_OK)
        if not msim and s.uses_simulator('messenger-sim'):
            print(f'bcrm: {s.binary("messenger-sim")} not built: running without the '
                  'Messenger simulator', flush=True)
        s.start_all(sender_replicas=1, messenger_sim=msim)
        info = _demo_setup(s)
        print('bcrm: sending the demo campaign', flush=True)
        demo_outcome = _demo_wait(s, info)
        pgdir = s.pg.base_dir if s.pg else '(external)'
        lines = [
            '',
            'bcrm is running.',
            f'  dashboard      {s.api_url}/',
            f'  API            {s.api_url}   (OpenAPI: {s.api_url}/v1/openapi.json)',
            f'  login          {DEMO_EMAIL} / {info["password"]}',
            f'                 (password kept in {os.path.join(work_dir, "demo-password")})',
            f'  org            {info["org_id"]}',
        ]
        if s.uses_slack_sim:
            org = info['org_id']
            lines += [
                f'  Slack sim      {s.sim_url}   (messages: {s.sim_url}/_sim/messages)',
                f'  demo bot       {info["bot_id"]}',
                f'  demo campaign  {info["campaign_id"]}: {demo_outcome}; check it with:',
                f'    curl -s -H "Authorization: Bearer $(cat {work_dir}/demo-api-key)" '
                f'{s.api_url}/v1/orgs/{org}/campaigns/{info["campaign_id"]}',
            ]
        else:
            lines.append(f'  Slack API      {s.env["BCRM_SLACK_API_URL"]} (no simulator)')
        if 'page_bot_id' in info:
            lines += [f'  Messenger sim  {s.msim_url}   (pages: {s.msim_url}/_sim/pages)',
                      f'  demo page      {info["page_bot_id"]}; a person writes to it with:',
                      f'    curl -s -X POST -d \'{{"psid":"<PSID from /_sim/users>"}}\' '
                      f'{s.msim_url}/_sim/inbound']
        lines += [
            f'  logs           {s.logs_dir}/',
            f'  PostgreSQL     {pgdir}',
            '',
            'Press Ctrl-C to stop.',
        ]
        print('\n'.join(lines), flush=True)
        reported = set()
        while True:
            time.sleep(1)
            for key, proc in s.procs.items():
                if not proc.alive() and key not in reported:
                    reported.add(key)
                    print(f'bcrm: {key} exited with status {proc.popen.poll()}; last lines '
                          f'of {proc.log_path}:\n{tail(proc.log_path, 15)}', flush=True)
    except KeyboardInterrupt:
        print('\nbcrm: stopping', flush=True)
    except Exception as e:  # noqa: BLE001 -- stop what runs, whatever went wrong
        if not isinstance(e, StackError):
            import traceback
            traceback.print_exc()
        print(f'bcrm: {e}', file=sys.stderr, flush=True)
        print(f'bcrm: logs are in {s.logs_dir}/', file=sys.stderr, flush=True)
        s.stop()
        return 1
    codes = s.stop()
    bad = {k: v for k, v in codes.items() if v != 0}
    if bad:
        print(f'bcrm: stopped; non-zero exits: {bad}', flush=True)
        return 1
    print('bcrm: stopped', flush=True)
    return 0


def pg_command(argv):
    """pg-start DIR / pg-stop DIR: a throwaway cluster for manual work (scripts/pg.sh)."""
    if len(argv) != 2:
        print('usage: stack.py pg-start|pg-stop DIR', file=sys.stderr)
        return 2
    base = os.path.abspath(argv[1])
    os.makedirs(os.path.dirname(base), exist_ok=True)
    pg = Postgres(base, durable=False)
    if argv[0] == 'pg-start':
        pg.start()
        print(f"export BCRM_DATABASE_URL='{pg.url()}'")
    else:
        pg.running = True
        pg.stop()
    return 0


def main(argv):
    if argv and argv[0] == 'run':
        return run(argv[1:])
    if argv and argv[0] in ('pg-start', 'pg-stop'):
        return pg_command(argv)
    print('usage: stack.py run | pg-start DIR | pg-stop DIR', file=sys.stderr)
    return 2


if __name__ == '__main__':
    try:
        sys.exit(main(sys.argv[1:]))
    except StackError as e:
        print(f'stack: {e}', file=sys.stderr)
        sys.exit(1)
