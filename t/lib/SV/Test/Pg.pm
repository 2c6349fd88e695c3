package SV::Test::Pg;

# A throwaway PostgreSQL cluster for one test, in the spirit of
# PostgreSQL::Test::Cluster:
#
#   my $pg = SV::Test::Pg->new();    # initdb in a temp dir
#   $pg->start;                      # creates database streamvibe on first start
#   $pg->psql('SELECT 1');           # dies with psql's stderr on error
#   my $dbh = $pg->dbh(user => 'authenticator');
#   my ($rc, $out) = $pg->migrate;   # streamvibe-admin migrate
#   my $lock = $pg->lock_table('public.platforms');   # held until $lock->rollback
#   my $from = $pg->log_offset;      # then $pg->log(from => $from): what came since
#   $pg->stop;                       # also done at exit
#
#   my $standby = SV::Test::Pg->new(name => 'standby');
#   my ($rc, $out) = $standby->init_standby_from($pg);   # pg_basebackup -R
#   $standby->start;
#
# The cluster listens only on a unix socket in its own directory
# (listen_addresses = ''), so parallel runs never collide. When the tests
# run as root, initdb and postgres run as the `postgres` OS user.

use strict;
use warnings;

use Carp qw(croak);
use File::Path ();
use POSIX ();
use SV::Test qw(sv_builddir sv_srcdir sv_tempdir wait_until free_tcp_port
    run_command spawn_process stop_process pid_alive slurp_file write_file
    register_cleanup unprivileged_user);

# Where the PostgreSQL server programs live: $PG_BINDIR, pg_config
# --bindir, the newest /usr/lib/postgresql/N/bin, or $PATH.
sub pg_bindir {
    return $ENV{PG_BINDIR} if $ENV{PG_BINDIR} && -x "$ENV{PG_BINDIR}/postgres";
    my @cand = sort { ($b =~ m{/(\d+)/bin$})[0] <=> ($a =~ m{/(\d+)/bin$})[0] }
        grep { -x "$_/postgres" && -x "$_/initdb" } glob('/usr/lib/postgresql/*/bin');
    return $cand[0] if @cand;
    my $pgc = SV::Test::find_program('pg_config');
    if ($pgc) {
        my $d = `$pgc --bindir 2>/dev/null`;
        chomp $d if defined $d;
        return $d if $d && -x "$d/postgres";
    }
    my $p = SV::Test::find_program('postgres');
    return $p ? ($p =~ s{/postgres$}{}r) : undef;
}

# True when initdb/postgres/psql are available; tests skip_all otherwise.
sub available {
    my $bin = pg_bindir();
    return $bin && -x "$bin/initdb" && -x "$bin/postgres" && -x _psql_path($bin) ? 1 : 0;
}

sub _psql_path {
    my ($bin) = @_;
    return "$bin/psql" if -x "$bin/psql";
    return SV::Test::find_program('psql') // "$bin/psql";
}

sub new {
    my ($class, %opt) = @_;
    my $bin = pg_bindir() or croak "PostgreSQL server programs not found (set PG_BINDIR)";
    my $base = sv_tempdir(prefix => 'svpg');
    my $self = bless {
        name       => $opt{name} // 'main',
        bindir     => $bin,
        psql_bin   => _psql_path($bin),
        basedir    => $base,
        datadir    => "$base/data",
        socket_dir => "$base/sock",
        logfile    => "$base/postgres.log",
        port       => $opt{port} // free_tcp_port(),
        os_user    => unprivileged_user(),    # undef: run as ourselves
        pid        => undef,
        dbname     => 'streamvibe',
        created_db => 0,
        settings   => $opt{settings} // {},
    }, $class;

    mkdir $self->{socket_dir} or croak "mkdir $self->{socket_dir}: $!";
    write_file($self->{logfile}, '', 0666);
    if (defined $self->{os_user}) {
        my ($uid, $gid) = (getpwnam($self->{os_user}))[2, 3];
        chown $uid, $gid, $base, $self->{socket_dir}, $self->{logfile};
    }
    $self->_initdb;
    register_cleanup(sub { $self->_teardown });
    return $self;
}

sub _initdb {
    my ($self) = @_;
    my @cmd = ("$self->{bindir}/initdb", '-D', $self->{datadir}, '-U', 'postgres',
        '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync');
    my ($rc, $out, $err) = run_command(\@cmd, user => $self->{os_user},
        dir => $self->{basedir}, env => { LC_ALL => 'C', LANG => undef });
    croak "initdb failed ($rc): $err$out" if $rc != 0;

    my %set = (
        listen_addresses        => "''",
        unix_socket_directories => "'$self->{socket_dir}'",
        port                    => $self->{port},
        fsync                   => 'off',
        synchronous_commit      => 'off',
        full_page_writes        => 'off',
        max_connections         => 200,
        shared_buffers          => "'128MB'",
        log_min_messages        => 'warning',
        log_line_prefix         => "'%m [%p] %u@%d '",
        %{ $self->{settings} },
    );
    my $conf = "\n# SV::Test::Pg\n" . join('', map { "$_ = $set{$_}\n" } sort keys %set);
    open my $fh, '>>', "$self->{datadir}/postgresql.conf" or croak "postgresql.conf: $!";
    print {$fh} $conf;
    close $fh;
    return;
}

for my $field (qw(datadir socket_dir port pid basedir logfile bindir os_user)) {
    no strict 'refs';
    *$field = sub { $_[0]{$field} };
}

# The server log, or with from => an offset from log_offset, only what
# was written after it.
sub log {
    my ($self, %opt) = @_;
    my $text = slurp_file($self->{logfile});
    return $text unless defined $opt{from} && defined $text;
    return length($text) > $opt{from} ? substr($text, $opt{from}) : '';
}

sub log_offset { -s $_[0]{logfile} // 0 }

sub start {
    my ($self) = @_;
    croak "postgres already running (pid $self->{pid})" if $self->{pid} && pid_alive($self->{pid});
    my $pid = spawn_process(
        ["$self->{bindir}/postgres", '-D', $self->{datadir}],
        user => $self->{os_user}, stdout => $self->{logfile}, stderr => $self->{logfile},
        dir => $self->{basedir}, env => { LC_ALL => 'C', LANG => undef },
        parent_death => 'INT');    # fast shutdown, even if the test is SIGKILLed
    $self->{pid} = $pid;

    my $isready = -x "$self->{bindir}/pg_isready" ? "$self->{bindir}/pg_isready"
        : SV::Test::find_program('pg_isready');
    my $ok = wait_until(sub {
        return 0 unless pid_alive($pid);
        if ($isready) {
            my ($rc) = run_command([$isready, '-q', '-h', $self->{socket_dir},
                '-p', $self->{port}, '-d', 'postgres', '-U', 'postgres'], timeout => 10);
            return $rc == 0;
        }
        return -S "$self->{socket_dir}/.s.PGSQL.$self->{port}";
    }, 60);
    unless ($ok) {
        my $log = $self->log // '';
        stop_process($pid, signals => ['INT', 'KILL']);
        $self->{pid} = undef;
        croak "postgres did not start:\n$log";
    }
    # postmaster.pid's first line is the postmaster's pid; with a direct
    # exec it is the pid we forked, but read it to be sure.
    my $pidfile = slurp_file("$self->{datadir}/postmaster.pid");
    if (defined $pidfile && $pidfile =~ /^(\d+)/) {
        $self->{pid} = $1 + 0;
    }
    unless ($self->{created_db}) {
        my $exists = $self->psql("SELECT 1 FROM pg_database WHERE datname = '$self->{dbname}'",
            dbname => 'postgres');
        $self->psql("CREATE DATABASE $self->{dbname}", dbname => 'postgres')
            unless $exists =~ /1/;
        $self->{created_db} = 1;
    }
    return $self;
}

# Fast shutdown (SIGINT) by pid and wait; SIGQUIT then SIGKILL if it hangs.
sub stop {
    my ($self, %opt) = @_;
    my $pid = $self->{pid} or return $self;
    stop_process($pid, signals => [$opt{mode} && $opt{mode} eq 'immediate'
        ? ('QUIT', 'KILL') : ('INT', 'QUIT', 'KILL')], timeout => 30);
    $self->{pid} = undef;
    return $self;
}

sub restart {
    my ($self) = @_;
    $self->stop;
    $self->start;
    return $self;
}

sub _teardown {
    my ($self) = @_;
    $self->stop if $self->{pid};
}

sub conninfo {
    my ($self, %opt) = @_;
    my $user = $opt{user} // 'postgres';
    my $db = $opt{dbname} // $self->{dbname};
    return "host=$self->{socket_dir} port=$self->{port} dbname=$db user=$user";
}

# A postgresql:// URI for the same connection (socket dir percent-encoded).
sub url {
    my ($self, %opt) = @_;
    my $user = $opt{user} // 'postgres';
    my $db = $opt{dbname} // $self->{dbname};
    (my $host = $self->{socket_dir}) =~ s{([^A-Za-z0-9._~-])}{sprintf '%%%02X', ord $1}ge;
    return "postgresql://$user\@$host:$self->{port}/$db";
}

sub dbh {
    my ($self, %opt) = @_;
    require DBI;
    my $user = $opt{user} // 'postgres';
    my $db = $opt{dbname} // $self->{dbname};
    my $dbh = DBI->connect("dbi:Pg:host=$self->{socket_dir};port=$self->{port};dbname=$db",
        $user, $opt{password} // '',
        { RaiseError => 1, AutoCommit => 1, PrintError => 0, pg_server_prepare => 1,
          %{ $opt{attr} // {} } });
    return $dbh;
}

# Run SQL through psql as $opt{user} (default postgres). Returns stdout
# (unaligned, tuples only); dies with stderr when psql fails.
sub psql {
    my ($self, $sql, %opt) = @_;
    my ($rc, $out, $err) = $self->psql_rc($sql, %opt);
    croak "psql failed ($rc): $err" if $rc != 0;
    chomp $out if $opt{chomp} // 1;
    return $out;
}

# Like psql but returns (exit_code, stdout, stderr) and never dies.
sub psql_rc {
    my ($self, $sql, %opt) = @_;
    my $user = $opt{user} // 'postgres';
    my $db = $opt{dbname} // $self->{dbname};
    my @cmd = ($self->{psql_bin}, '-X', '-v', 'ON_ERROR_STOP=1', '-At', '-q',
        '-h', $self->{socket_dir}, '-p', $self->{port}, '-U', $user, '-d', $db);
    my %ro = (timeout => $opt{timeout} // 300, env => { PGOPTIONS => undef, PGPASSWORD => undef });
    if (defined $opt{file}) {
        push @cmd, '-f', $opt{file};
    } else {
        push @cmd, '-f', '-';
        $ro{stdin_data} = $sql;
    }
    return run_command(\@cmd, %ro);
}

# A superuser connection holding an ACCESS EXCLUSIVE lock on $table in an
# open transaction: what the server reads of the table waits until
# $dbh->rollback.
sub lock_table {
    my ($self, $table) = @_;
    my $dbh = $self->dbh(user => 'postgres');
    $dbh->begin_work;
    $dbh->do("LOCK TABLE $table IN ACCESS EXCLUSIVE MODE");
    return $dbh;
}

# Make this (not yet started) cluster a streaming standby of $primary: its
# data directory is replaced by a pg_basebackup -R of the running
# primary, which then listens on this cluster's own port and socket.
# Returns (pg_basebackup's exit code, its output).
sub init_standby_from {
    my ($self, $primary) = @_;
    croak "init_standby_from: $self->{name} is running" if $self->{pid};
    File::Path::remove_tree($self->{datadir});
    my ($rc, $out, $err) = run_command(["$self->{bindir}/pg_basebackup", '-h', $primary->socket_dir,
        '-p', $primary->port, '-U', 'postgres', '-D', $self->{datadir}, '-R', '-X', 'stream', '-c', 'fast'],
        user => $self->{os_user}, dir => $self->{basedir});
    return ($rc, "$out$err") if $rc != 0;
    # The copied postgresql.conf names the primary's port and socket; the
    # last setting in the file wins.
    open my $fh, '>>', "$self->{datadir}/postgresql.conf" or croak "postgresql.conf: $!";
    print {$fh} "port = $self->{port}\nunix_socket_directories = '$self->{socket_dir}'\n";
    close $fh;
    return ($rc, "$out$err");
}

# streamvibe-admin migrate @args against this cluster as the superuser.
# Returns (exit_code, combined stdout+stderr).
sub migrate {
    my ($self, @args) = @_;
    my $admin = sv_builddir() . '/streamvibe-admin';
    croak "$admin not built" unless -x $admin;
    my ($rc, $out) = run_command([$admin, 'migrate', @args], merge => 1, timeout => 300,
        env => {
            STREAMVIBE_ADMIN_DATABASE_URL => $self->conninfo(user => 'postgres'),
            STREAMVIBE_SQL_DIR            => sv_srcdir() . '/sql',
        });
    return ($rc, $out);
}

# Runs SQL the way the server does: on $dbh (connected as authenticator),
# in one transaction, SET LOCAL ROLE $role with request.jwt.claims for
# $uid. $sql may be a code ref called with $dbh (its value in {value}).
# $opt{pre} lists statements run first in the same transaction. Returns
# {ok => 1, rows => [...], count => N} or {ok => 0, state => SQLSTATE,
# err => message}; the transaction is committed or rolled back.
sub run_as_role {
    my ($class, $dbh, $role, $uid, $sql, $bind, %opt) = @_;
    require JSON::PP;
    my %r;
    $dbh->begin_work;
    my $ok = eval {
        $dbh->do("SET LOCAL ROLE $role");
        my %claims = (role => $role, defined $uid ? (sub => $uid) : ());
        $dbh->do(q{SELECT set_config('request.jwt.claims', ?, true)}, undef,
            JSON::PP::encode_json(\%claims));
        $dbh->do($_) for @{ $opt{pre} // [] };
        if (ref $sql eq 'CODE') {
            $r{value} = $sql->($dbh);
        } else {
            my $sth = $dbh->prepare($sql);
            $r{count} = $sth->execute(@{ $bind // [] }) + 0;
            $r{rows} = $sth->{NUM_OF_FIELDS} ? $sth->fetchall_arrayref({}) : [];
        }
        1;
    };
    if ($ok) {
        $dbh->commit;
        $r{ok} = 1;
    } else {
        %r = (ok => 0, state => $dbh->state, err => $@);
        $dbh->rollback;
    }
    return \%r;
}

1;
