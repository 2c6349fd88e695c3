package SV::Test::Apache;

# A real Apache 2.4 (Debian's apache2) in one of the three shipped
# configurations (apache/), on a free loopback port, with its own
# ServerRoot in a temp dir:
#
#   my $ap = SV::Test::Apache->new(mode => 'proxy_fcgi', pool => $pool);
#   my $ap = SV::Test::Apache->new(mode => 'fcgid', config => $file, body_limit => N);
#   my $ap = SV::Test::Apache->new(mode => 'cgi',   config => $file, body_limit => N);
#   my $ap = SV::Test::Apache->new(mode => 'cgi', subdir => 'api', ...);   # DOCROOT/api/
#   $ap->start;
#   my $res = $ap->request('GET', '/healthz');
#   $ap->stop;               # also at exit, by pid
#
# The site file is the shipped template rendered as an operator would
# (apache/streamvibe-fcgid.conf.in, apache/streamvibe-proxy-fcgi.conf.in,
# or for cgi apache/htaccess.in as DOCROOT/.htaccess next to a copy of
# the binary); this module adds only what Debian's apache2.conf and the
# hosting provider give: the server itself, LoadModule lines, and for cgi
# a VirtualHost whose document root allows .htaccess overrides.
#
# Started as root, Apache runs as nobody altogether (no root parent), so
# the processes it spawns (mod_fcgid's, mod_cgi's) are nobody's too.

use strict;
use warnings;

use Carp qw(croak);
use parent 'SV::Test::HTTPClient';
use File::Copy qw(copy);
use IO::Socket::INET;
use SV::Test qw(sv_srcdir sv_builddir sv_tempdir wait_until free_tcp_port spawn_process
    stop_process pid_alive slurp_file write_file register_cleanup find_program proc_children);

my $moddir = '/usr/lib/apache2/modules';
my %modules = (
    proxy_fcgi => [qw(mpm_event authz_core proxy proxy_fcgi)],
    fcgid      => [qw(mpm_event authz_core alias rewrite fcgid)],
    cgi        => [qw(mpm_prefork authz_core alias mime cgi env rewrite)],
);

sub apache_binary {
    return $ENV{APACHE2} if $ENV{APACHE2} && -x $ENV{APACHE2};
    return find_program('apache2', '/usr/sbin');
}

# Why mode $mode cannot run here, or undef when it can.
sub unavailable {
    my ($mode) = @_;
    return 'apache2 not installed (apt-get install apache2)' unless apache_binary();
    for my $m (@{ $modules{$mode} // croak "unknown mode $mode" }) {
        next if -f "$moddir/mod_$m.so";
        return "mod_$m not installed" . ($m eq 'fcgid' ? ' (apt-get install libapache2-mod-fcgid)' : '');
    }
    return undef;
}

# The user Apache runs as: nobody when we are root, else ourselves.
sub run_user { return $> == 0 ? 'nobody' : undef }

# The application's configuration and log as a customer keeps them: in a
# directory of their own, outside any document root, owned by the user
# Apache runs the application as (mode 0600: the file holds the database
# password and jwt_secret). settings: more "key = value" lines (a code
# value is called with the directory); dirs: directories to create
# there, owned the same way (a job spool). Returns the directory, the
# configuration file and the log file.
sub app_config {
    my (%opt) = @_;
    my $dir = sv_tempdir(prefix => $opt{prefix} // 'svapphome');
    my $log = "$dir/streamvibe.log";
    my @dirs = map { "$dir/$_" } @{ $opt{dirs} // [] };
    for my $d (@dirs) { mkdir $d, 0700 or croak "mkdir $d: $!" }
    my $conf = write_file("$dir/streamvibe.conf", join('',
        'database_url = ', $opt{pg}->conninfo(user => 'authenticator'), "\n",
        'jwt_secret = ', ($opt{secret} // croak 'secret'), "\n",
        "log_file = $log\n",
        map { my $v = $opt{settings}{$_}; "$_ = " . (ref $v ? $v->($dir) : $v) . "\n" }
            sort keys %{ $opt{settings} // {} }), 0600);
    write_file($log, '', 0600);
    if (my $user = run_user()) {
        my ($uid, $gid) = (getpwnam($user))[2, 3];
        chown $uid, $gid, $conf, $log, @dirs;
    }
    return ($dir, $conf, $log);
}

sub new {
    my ($class, %opt) = @_;
    my $mode = $opt{mode} // croak 'mode';
    croak "mode $mode: " . unavailable($mode) if unavailable($mode);
    my $dir = sv_tempdir(prefix => 'svapache');
    my $pool = $opt{pool};
    my $self = bless {
        mode       => $mode,
        dir        => $dir,
        port       => $opt{port} // free_tcp_port(),
        pool       => $pool,
        config     => $opt{config},
        body_limit => $opt{body_limit} // ($pool && $pool->conf('body_limit')) // 1048576,
        max_processes => $opt{max_processes} // 2,
        subdir     => $opt{subdir},
        pid        => undef,
        kids       => [],
    }, $class;
    croak 'proxy_fcgi needs pool' if $mode eq 'proxy_fcgi' && !$pool;
    croak "$mode needs config" if $mode ne 'proxy_fcgi' && !defined $self->{config};
    mkdir "$dir/$_" for qw(run fcgid);
    $self->render;
    if (my $user = run_user()) {
        my ($uid, $gid) = (getpwnam($user))[2, 3];
        system('chown', '-R', "$uid:$gid", $dir) == 0 or croak "chown $dir";
    }
    register_cleanup(sub { $self->stop if $self->{pid} });
    return $self;
}

sub dir       { $_[0]{dir} }
sub port      { $_[0]{port} }
sub pid       { $_[0]{pid} }
sub mode      { $_[0]{mode} }
sub docroot   { "$_[0]{dir}/htdocs" }
sub conf_file { "$_[0]{dir}/httpd.conf" }
sub site_file {
    my ($self) = @_;
    return "$self->{dir}/site.conf" if $self->{mode} ne 'cgi';
    return join '/', $self->docroot, (defined $self->{subdir} ? $self->{subdir} : ()), '.htaccess';
}
sub error_log { slurp_file("$_[0]{dir}/error.log") // '' }
sub access_log { slurp_file("$_[0]{dir}/access.log") // '' }

# The shipped template with @NAME@ replaced; croaks on an unknown one.
sub render_template {
    my ($name, %v) = @_;
    my $path = sv_srcdir() . "/apache/$name";
    my $tpl = slurp_file($path) // croak "cannot read $path";
    $tpl =~ s/\@([A-Z_]+)\@/exists $v{$1} ? $v{$1} : croak "$name: unknown placeholder \@$1\@"/ge;
    return $tpl;
}

sub render {
    my ($self) = @_;
    my ($dir, $mode) = @$self{qw(dir mode)};
    my $listen = "127.0.0.1:$self->{port}";
    my $bin = sv_builddir() . '/streamvibe-fcgi';
    my $mpm = $mode eq 'cgi'
        ? "StartServers 2\nMinSpareServers 1\nMaxSpareServers 4\nMaxRequestWorkers 8\n"
        : "StartServers 1\nServerLimit 2\nThreadsPerChild 8\nMaxRequestWorkers 16\n"
        . "MinSpareThreads 1\nMaxSpareThreads 16\n";
    my $server = join '', map { "LoadModule ${_}_module $moddir/mod_$_.so\n" } @{ $modules{$mode} };
    $server .= <<"CONF";
# written by SV::Test::Apache: what Debian's apache2.conf would give
ServerRoot "$dir"
ServerName localhost
Listen $listen
PidFile "$dir/httpd.pid"
DefaultRuntimeDir "$dir/run"
Mutex file:$dir/run default
ErrorLog "$dir/error.log"
LogLevel warn
LogFormat "%h %l %u %t \\"%r\\" %>s %b %D" common
CustomLog "$dir/access.log" common
Timeout 60
KeepAlive On
$mpm
AccessFileName .htaccess
<IfModule mime_module>
    TypesConfig /dev/null
</IfModule>
<Directory />
    AllowOverride None
    Require all denied
</Directory>
<Files ".ht*">
    Require all denied
</Files>
CONF
    if ($mode eq 'fcgid') {
        # Debian's fcgid.conf puts these under /var/lib/apache2/fcgid.
        $server .= "FcgidIPCDir \"$dir/fcgid\"\nFcgidProcessTableFile \"$dir/fcgid/shm\"\n";
        # The binary as installed: a directory holding streamvibe-fcgi.
        mkdir "$dir/sbin";
        copy($bin, "$dir/sbin/streamvibe-fcgi") or croak "copy $bin: $!";
        chmod 0755, "$dir/sbin/streamvibe-fcgi";
        write_file("$dir/site.conf", render_template('streamvibe-fcgid.conf.in',
            LISTEN => $listen, SERVER_NAME => 'localhost', SBINDIR => "$dir/sbin",
            CONFIG => $self->{config}, BODY_LIMIT => $self->{body_limit},
            MAX_PROCESSES => $self->{max_processes}), 0644);
        $server .= "Include \"$dir/site.conf\"\n";
    } elsif ($mode eq 'proxy_fcgi') {
        write_file("$dir/site.conf", render_template('streamvibe-proxy-fcgi.conf.in',
            LISTEN => $listen, SERVER_NAME => 'localhost', SOCKET => $self->{pool}->socket,
            BODY_LIMIT => $self->{body_limit}), 0644);
        $server .= "Include \"$dir/site.conf\"\n";
    } else {
        # The hosting provider's part: a VirtualHost whose document root
        # the customer controls through .htaccess.
        my $docroot = $self->docroot;
        mkdir $docroot;
        # subdir: the API in a folder of a site whose own pages stay
        # Apache's (the configuration then sets base_path = /SUBDIR).
        my $apidir = $docroot;
        if (defined $self->{subdir}) {
            $apidir = "$docroot/$self->{subdir}";
            mkdir $apidir or croak "mkdir $apidir: $!";
            write_file("$docroot/index.html", "<p>the site's own page</p>\n", 0644);
        }
        copy($bin, "$apidir/streamvibe.cgi") or croak "copy $bin: $!";
        chmod 0755, "$apidir/streamvibe.cgi";
        write_file("$apidir/.htaccess", render_template('htaccess.in',
            SCRIPT => 'streamvibe.cgi', CONFIG => $self->{config},
            BODY_LIMIT => $self->{body_limit}), 0644);
        $server .= <<"CONF";
<VirtualHost $listen>
    ServerName localhost
    DocumentRoot "$docroot"
    <Directory "$docroot">
        AllowOverride All
        Require all granted
    </Directory>
</VirtualHost>
CONF
    }
    write_file("$dir/httpd.conf", $server, 0644);
    return "$dir/httpd.conf";
}

sub _cmd {
    my ($self, @extra) = @_;
    return [apache_binary(), '-d', $self->{dir}, '-f', "$self->{dir}/httpd.conf", @extra];
}

sub start {
    my ($self) = @_;
    croak 'apache already running' if $self->{pid} && pid_alive($self->{pid});
    my $user = run_user();
    my %env = (APACHE_RUN_DIR => "$self->{dir}/run", APACHE_LOG_DIR => $self->{dir},
        APACHE_LOCK_DIR => "$self->{dir}/run", LANG => 'C');
    my ($rc, $out, $err) = SV::Test::run_command($self->_cmd('-t'), merge => 1, user => $user, env => \%env);
    croak "apache2 -t failed:\n$out$err" if $rc != 0;
    unlink "$self->{dir}/httpd.pid";
    # A process group of its own: stopping, Apache's prefork MPM sends
    # SIGTERM to its whole process group (killpg(getpgrp())), and ours
    # is the whole test suite's (make check, prove -j). As nobody it would
    # reach every process of nobody's: other tests' nginx workers, which
    # then drop the requests they hold without a word.
    my $pid = spawn_process($self->_cmd('-DFOREGROUND'), user => $user, env => \%env, new_group => 1,
        stdout => "$self->{dir}/stderr.log", stderr => "$self->{dir}/stderr.log");
    $self->{pid} = $pid;
    my $ok = wait_until(sub {
        return -1 unless pid_alive($pid);
        return 0 unless -s "$self->{dir}/httpd.pid";
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $self->{port},
            Proto => 'tcp', Timeout => 1) or return 0;
        close $s;
        return 1;
    }, 20);
    if (!$ok || $ok == -1) {
        my $log = $self->error_log . (slurp_file("$self->{dir}/stderr.log") // '');
        stop_process($pid, signals => ['TERM', 'KILL'], timeout => 5);
        $self->{pid} = undef;
        croak "apache2 did not start:\n$log";
    }
    return $self;
}

# Every process below Apache's parent: its children (and mod_fcgid's
# process manager's children, the applications).
sub descendants {
    my ($self) = @_;
    my @all;
    my @queue = $self->{pid} ? ($self->{pid}) : ();
    while (defined(my $p = shift @queue)) {
        my @k = proc_children($p);
        push @all, @k;
        push @queue, @k;
    }
    return @all;
}

# The streamvibe-fcgi processes Apache started (mod_fcgid's applications,
# running CGI programs).
sub app_pids {
    my ($self) = @_;
    return grep { (slurp_file("/proc/$_/cmdline") // '') =~ /streamvibe/ } $self->descendants;
}

# SIGTERM (Apache stops its children, mod_fcgid its applications), then
# KILL; anything of Apache's still alive afterwards goes too, by pid.
sub stop {
    my ($self) = @_;
    my $pid = $self->{pid} or return $self;
    my @kids = $self->descendants;
    stop_process($pid, signals => ['TERM', 'KILL'], timeout => 15);
    $self->{left_behind} = [grep { pid_alive($_) } @kids];
    for my $k (@{ $self->{left_behind} }) {
        my $cmd = slurp_file("/proc/$k/cmdline") // '';
        stop_process($k, signals => ['TERM', 'KILL'], timeout => 3)
            if $cmd =~ /apache2|streamvibe/;
    }
    $self->{pid} = undef;
    $self->_check_sanitizers;
    return $self;
}

# In a --enable-sanitizers build, a report from ASan/UBSan/LeakSanitizer
# by a streamvibe-fcgi that Apache ran (its stderr is Apache's error log)
# fails the test that ran it.
sub _check_sanitizers {
    my ($self) = @_;
    my $log = $self->error_log . (slurp_file("$self->{dir}/stderr.log") // '');
    return unless $log =~ /(?:ERROR: (?:Address|Leak|Memory|Thread)Sanitizer|runtime error:|SUMMARY: \w+Sanitizer)/;
    require Test::Builder;
    my $tb = Test::Builder->new;
    $tb->ok(0, 'no sanitizer reports from streamvibe-fcgi under Apache');
    $tb->diag($log);
}

# Processes of Apache's that outlived its stop (before they were killed).
sub left_behind { @{ $_[0]{left_behind} // [] } }

sub url {
    my ($self, $path) = @_;
    return "http://127.0.0.1:$self->{port}" . ($path // '/');
}

1;
