package SV::Test::WebSocket;

# A small WebSocket client for the realtime tests: a real RFC 6455
# handshake and frames built byte by byte, so a test can also send what a
# browser never would (unmasked frames, bad opcodes, invalid UTF-8, ...).
#
#   my $ws = SV::Test::WebSocket->connect(port => $port,
#       path => "/realtime/v1/websocket?apikey=$anon&vsn=2.0.0");
#   $ws->status;                       # 101
#   $ws->phx_send('phoenix', 'heartbeat', {}, ref => '1');
#   my $m = $ws->phx_wait(sub { $_[0]{event} eq 'phx_reply' }, 5);
#   $ws->send_frame(opcode => 1, payload => "\xff", mask => 1);
#   my ($code, $reason) = $ws->wait_close(5);
#
#   my $answer = SV::Test::WebSocket::raw_request($port, $bytes);  # plain HTTP

use strict;
use warnings;

use Carp qw(croak);
use IO::Select;
use IO::Socket::INET;
use JSON::PP ();
use MIME::Base64 qw(encode_base64);
use Time::HiRes qw(time);

my $json = JSON::PP->new->canonical->allow_nonref;

# Sends $bytes on a new connection and returns everything the server sent
# until it closed (or $timeout seconds passed).
sub raw_request {
    my ($port, $bytes, $timeout) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp', Timeout => 5)
        or croak "connect 127.0.0.1:$port: $!";
    binmode $s;
    $s->autoflush(1);
    local $SIG{PIPE} = 'IGNORE';
    syswrite($s, $bytes) if length $bytes;
    my $got = '';
    my $sel = IO::Select->new($s);
    my $deadline = time + ($timeout // 5);
    while (time < $deadline && $sel->can_read($deadline - time)) {
        my $n = sysread($s, my $buf, 65536);
        last unless $n;
        $got .= $buf;
    }
    close $s;
    return $got;
}

# Options: port, path, headers ({name => value, undef: leave out}),
# timeout, rcvbuf (SO_RCVBUF set before connecting: a small one makes a
# reader that stops reading fill up early).
sub connect {
    my ($class, %opt) = @_;
    my $port = $opt{port} or croak 'port';
    my $path = $opt{path} // '/realtime/v1/websocket';
    my $s;
    if ($opt{rcvbuf}) {
        require Socket;
        $s = IO::Socket::INET->new(Proto => 'tcp') or croak "socket: $!";
        setsockopt($s, Socket::SOL_SOCKET(), Socket::SO_RCVBUF(), $opt{rcvbuf}) or croak "SO_RCVBUF: $!";
        $s->connect(Socket::pack_sockaddr_in($port, Socket::inet_aton('127.0.0.1'))) or croak "connect 127.0.0.1:$port: $!";
    } else {
        $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp', Timeout => 5)
            or croak "connect 127.0.0.1:$port: $!";
    }
    binmode $s;
    $s->autoflush(1);
    my $key = encode_base64(join('', map { chr(int rand 256) } 1 .. 16), '');
    my %h = (
        Host                    => "127.0.0.1:$port",
        Upgrade                 => 'websocket',
        Connection              => 'Upgrade',
        'Sec-WebSocket-Key'     => $key,
        'Sec-WebSocket-Version' => '13',
        %{ $opt{headers} // {} },
    );
    my $req = "GET $path HTTP/1.1\r\n" . join('', map { "$_: $h{$_}\r\n" } grep { defined $h{$_} } sort keys %h) . "\r\n";
    my $self = bless { sock => $s, buf => '', vsn => ($path =~ /vsn=2\./ ? 2 : 1), key => $key, closed => 0 }, $class;
    local $SIG{PIPE} = 'IGNORE';
    syswrite($s, $req);
    # Read the answer's head; keep what follows it (frames) in buf.
    my $deadline = time + ($opt{timeout} // 5);
    my $sel = IO::Select->new($s);
    while ($self->{buf} !~ /\r\n\r\n/ && time < $deadline && $sel->can_read($deadline - time)) {
        my $n = sysread($s, my $b, 65536);
        last unless $n;
        $self->{buf} .= $b;
    }
    my ($head, $rest) = split /\r\n\r\n/, $self->{buf}, 2;
    $self->{head} = $head // '';
    $self->{buf} = $rest // '';
    ($self->{status}) = ($self->{head} =~ m{^HTTP/1\.1 (\d{3})});
    $self->{status} //= 0;
    if ($self->{status} != 101) {
        # The rest of a plain answer (its body).
        while (time < $deadline && $sel->can_read($deadline - time)) {
            my $n = sysread($s, my $b, 65536);
            last unless $n;
            $self->{buf} .= $b;
        }
        $self->{body} = $self->{buf};
    }
    return $self;
}

sub status { $_[0]{status} }
sub head   { $_[0]{head} }
sub body   { $_[0]{body} }
sub socket { $_[0]{sock} }
sub vsn    { $_[0]{vsn} }

sub accept_ok {
    my ($self) = @_;
    require Digest::SHA;
    my $want = encode_base64(Digest::SHA::sha1($self->{key} . '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'), '');
    return $self->{head} =~ /^Sec-WebSocket-Accept:\s*\Q$want\E\s*$/mi ? 1 : 0;
}

# Builds and sends one frame. Options: opcode (1), payload (''), fin (1),
# rsv (0..7), mask (1), length (the length to announce; default the
# payload's), long_form (16 or 64: a longer length form than needed),
# split (write that many bytes, pause 0.3 s, then the rest).
sub send_frame {
    my ($self, %o) = @_;
    my $payload = $o{payload} // '';
    my $fin = $o{fin} // 1;
    my $mask = $o{mask} // 1;
    my $len = $o{length} // length $payload;
    my $frame = chr(($fin ? 0x80 : 0) | (($o{rsv} // 0) << 4) | ($o{opcode} // 1));
    my $m = $mask ? 0x80 : 0;
    if ($len < 126 && !$o{long_form}) {
        $frame .= chr($m | $len);
    } elsif ($len < 65536 && ($o{long_form} // 16) == 16) {
        $frame .= chr($m | 126) . pack('n', $len);
    } else {
        $frame .= chr($m | 127) . pack('Q>', $len);
    }
    if ($mask) {
        my $k = join '', map { chr(int rand 256) } 1 .. 4;
        my $masked = $payload ^ substr($k x (int(length($payload) / 4) + 1), 0, length $payload);
        $frame .= $k . $masked;
    } else {
        $frame .= $payload;
    }
    local $SIG{PIPE} = 'IGNORE';
    my $off = 0;
    if ($o{split}) {
        syswrite($self->{sock}, $frame, $o{split}) == $o{split} or return 0;
        $off = $o{split};
        Time::HiRes::sleep(0.3);
    }
    while ($off < length $frame) {
        my $w = syswrite($self->{sock}, $frame, length($frame) - $off, $off);
        return 0 unless $w;
        $off += $w;
    }
    return 1;
}

sub send_text {
    my ($self, $text) = @_;
    return $self->send_frame(opcode => 1, payload => $text);
}

# Reads one frame: {opcode, fin, payload}, or undef on timeout, or
# {eof => 1} when the server closed the connection.
sub recv_frame {
    my ($self, $timeout) = @_;
    my $deadline = time + ($timeout // 5);
    my $sel = IO::Select->new($self->{sock});
    while (1) {
        my $b = $self->{buf};
        if (length($b) >= 2) {
            my ($b0, $b1) = unpack('CC', $b);
            my $len = $b1 & 0x7f;
            my $hl = 2;
            if ($len == 126) { if (length($b) >= 4) { $len = unpack('n', substr($b, 2, 2)); $hl = 4 } else { $len = undef } }
            elsif ($len == 127) { if (length($b) >= 10) { $len = unpack('Q>', substr($b, 2, 8)); $hl = 10 } else { $len = undef } }
            if (defined $len && length($b) >= $hl + $len) {
                my $f = { fin => ($b0 >> 7) & 1, opcode => $b0 & 0x0f, masked => ($b1 >> 7) & 1,
                          payload => substr($b, $hl, $len) };
                $self->{buf} = substr($b, $hl + $len);
                return $f;
            }
        }
        return { eof => 1 } if $self->{eof};
        my $left = $deadline - time;
        return undef if $left <= 0;
        return undef unless $sel->can_read($left);
        my $n = sysread($self->{sock}, my $chunk, 1 << 20);
        if (!$n) { $self->{eof} = 1; next }
        $self->{buf} .= $chunk;
    }
}

# Reads frames until a close frame: returns (code, reason), or (undef)
# when the connection ended (or timed out) without one.
sub wait_close {
    my ($self, $timeout) = @_;
    my $deadline = time + ($timeout // 5);
    while (time < $deadline) {
        my $f = $self->recv_frame($deadline - time) // return;
        return if $f->{eof};
        next unless $f->{opcode} == 8;
        return (length $f->{payload} >= 2 ? unpack('n', $f->{payload}) : 1005, substr($f->{payload}, 2));
    }
    return;
}

# True once the server has closed the TCP connection (EOF or reset);
# whatever arrives before is read and discarded.
sub wait_eof {
    my ($self, $timeout) = @_;
    return 1 if $self->{eof};
    my $deadline = time + ($timeout // 5);
    my $sel = IO::Select->new($self->{sock});
    while (time < $deadline) {
        next unless $sel->can_read($deadline - time);
        my $n = sysread($self->{sock}, my $chunk, 1 << 20);
        return $self->{eof} = 1 unless $n;
    }
    return 0;
}

# --- Phoenix -----------------------------------------------------------------

sub phx_encode {
    my ($self, $topic, $event, $payload, %o) = @_;
    if ($self->{vsn} == 2) {
        return $json->encode([$o{join_ref}, $o{ref}, $topic, $event, $payload]);
    }
    my %m = (topic => $topic, event => $event, payload => $payload, ref => $o{ref});
    $m{join_ref} = $o{join_ref} if defined $o{join_ref};
    return $json->encode(\%m);
}

sub phx_send {
    my ($self, $topic, $event, $payload, %o) = @_;
    return $self->send_text($self->phx_encode($topic, $event, $payload, %o));
}

# The next Phoenix message as {join_ref, ref, topic, event, payload, raw},
# or undef (timeout, close, eof). Pings are answered on the way.
sub phx_recv {
    my ($self, $timeout) = @_;
    my $deadline = time + ($timeout // 5);
    while (time < $deadline) {
        my $f = $self->recv_frame($deadline - time) // return;
        return if $f->{eof};
        if ($f->{opcode} == 8) { $self->{closed_with} = $f; return }
        next unless $f->{opcode} == 1;
        my $d = eval { $json->decode($f->{payload}) } or return { raw => $f->{payload}, bad => 1 };
        if (ref $d eq 'ARRAY') {
            return { join_ref => $d->[0], ref => $d->[1], topic => $d->[2], event => $d->[3], payload => $d->[4], raw => $f->{payload} };
        }
        return { %$d, raw => $f->{payload} };
    }
    return;
}

# The first message for which $match->($msg) is true; the others seen
# meanwhile are kept in $self->{seen}.
sub phx_wait {
    my ($self, $match, $timeout) = @_;
    my $deadline = time + ($timeout // 5);
    while (time < $deadline) {
        my $m = $self->phx_recv($deadline - time) // return;
        return $m if $match->($m);
        push @{ $self->{seen} }, $m;
    }
    return;
}

# Joins $topic (realtime:NAME) with $config; returns the reply message.
sub phx_join {
    my ($self, $topic, $payload, %o) = @_;
    my $ref = $o{ref} // ++$self->{refs};
    $self->phx_send($topic, 'phx_join', $payload, ref => "$ref", join_ref => "$ref");
    return $self->phx_wait(sub { $_[0]{event} eq 'phx_reply' && ($_[0]{ref} // '') eq "$ref" }, $o{timeout} // 10);
}

sub close {
    my ($self) = @_;
    close $self->{sock} if $self->{sock};
    $self->{sock} = undef;
}

1;
