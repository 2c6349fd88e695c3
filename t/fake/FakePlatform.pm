package FakePlatform;

# Fake YouTube Data API v3, Instagram Graph API and TikTok Display API v2
# servers for the sync tests (SV::Test::Fake underneath), answering in
# each API's documented shapes (the request paths, parameters, paging and
# error bodies the real services use):
#
#   my $yt = FakePlatform->new('youtube', oauth => $fake_oauth);   # or tokens => [...]
#   $yt->url;                          # the base to configure (…/youtube/v3)
#   $yt->items(@items);                # the account's content, newest first
#   $yt->mode(page_size => 2, revoked => [$token], fail => 500,
#             malformed => 1, delay => 2, busy_once => 2);
#   $yt->requests;                     # what it received (SV::Test::Fake)
#
# An item is {id, title, description, tags => [...], views, likes,
# comments, duration (seconds), created (epoch seconds)}; a count left
# undef is absent from the answer, as when a creator hides it.
#
# A request is authorised when its Bearer token (or, on Instagram, its
# access_token parameter) is an access token the fake OAuth provider
# issued (or one of new's tokens) and is not in mode's revoked list; otherwise the platform's
# expired-token error (YouTube 401 authError, Instagram 400 OAuthException
# code 190, TikTok 401 access_token_invalid). The modes: page_size (items a
# listing page holds, at most what the client asked for), fail => status
# (every call answers the platform's error with it), malformed (every call
# answers 200 with a body that is not JSON), quota (YouTube: every call
# answers 403 quotaExceeded, the day's quota), delay (seconds before each
# answer), busy_once => seconds (the next call answers 429 with that
# Retry-After, once).
#
# The state lives in a directory the forked server reads at each request.

use strict;
use warnings;
use JSON::PP;
use SV::Test qw(sv_tempdir slurp_file write_file);
use SV::Test::Fake;

my $JSON = JSON::PP->new->canonical;

sub new {
    my ($class, $platform, %opt) = @_;
    my $dir = sv_tempdir(prefix => "svfake-$platform");
    my $self = bless { platform => $platform, dir => $dir, oauth => $opt{oauth}, tokens => $opt{tokens} // [] }, $class;
    $self->items();
    $self->mode();
    my %routes;
    if ($platform eq 'youtube') {
        %routes = ('GET /youtube/v3/channels' => sub { $self->_serve($_[0], \&_yt_channels) },
                   'GET /youtube/v3/playlistItems' => sub { $self->_serve($_[0], \&_yt_playlist) },
                   'GET /youtube/v3/videos' => sub { $self->_serve($_[0], \&_yt_videos) });
    } elsif ($platform eq 'instagram') {
        %routes = ('GET /v21.0/me' => sub { $self->_serve($_[0], \&_ig_me) },
                   'GET /v21.0/17841405822304914/media' => sub { $self->_serve($_[0], \&_ig_media) });
    } elsif ($platform eq 'tiktok') {
        %routes = ('POST /v2/video/list/' => sub { $self->_serve($_[0], \&_tt_list) },
                   'POST /v2/video/query/' => sub { $self->_serve($_[0], \&_tt_query) });
    } else {
        die "no fake for $platform";
    }
    $self->{fake} = SV::Test::Fake->new(name => $platform, routes => \%routes);
    return $self;
}

sub url {
    my ($self) = @_;
    my %path = (youtube => '/youtube/v3', instagram => '/v21.0', tiktok => '/v2');
    return $self->{fake}->url($path{ $self->{platform} });
}
sub fake { $_[0]{fake} }
sub requests { my $self = shift; $self->{fake}->requests(@_) }
sub stop { $_[0]{fake}->stop }

sub items {
    my ($self, @items) = @_;
    write_file("$self->{dir}/items.json", $JSON->encode(\@items));
    return $self;
}
sub mode {
    my ($self, %m) = @_;
    unlink "$self->{dir}/busy";
    if ($m{busy_once}) { write_file("$self->{dir}/busy", $m{busy_once}) }
    write_file("$self->{dir}/mode.json", $JSON->encode(\%m));
    return $self;
}

sub _state {
    my ($self) = @_;
    return (decode_json(slurp_file("$self->{dir}/items.json")), decode_json(slurp_file("$self->{dir}/mode.json")));
}

sub _json { my ($status, $doc, %h) = @_; [$status, { 'Content-Type' => 'application/json; charset=UTF-8', %h }, $JSON->encode($doc)] }

# The platform's error body for status.
sub _error {
    my ($self, $status, $kind) = @_;
    my $p = $self->{platform};
    if ($p eq 'youtube') {
        return _json(401, { error => { code => 401, message => 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
            errors => [{ message => 'Invalid Credentials', domain => 'global', reason => 'authError', location => 'Authorization', locationType => 'header' }],
            status => 'UNAUTHENTICATED' } }) if $kind eq 'token';
        return _json($status, { error => { code => $status, message => $status == 429 ? 'Rate Limit Exceeded' : 'Internal error encountered.',
            errors => [{ message => 'Internal error encountered.', domain => 'global', reason => $status == 429 ? 'rateLimitExceeded' : 'backendError' }],
            status => $status == 429 ? 'RESOURCE_EXHAUSTED' : 'INTERNAL' } });
    }
    if ($p eq 'instagram') {
        return [400, { 'Content-Type' => 'application/json; charset=UTF-8',
            'WWW-Authenticate' => 'OAuth "Facebook Platform" "invalid_token" "Error validating access token: Session has expired"' },
            $JSON->encode({ error => { message => 'Error validating access token: Session has expired on Thursday, 21-May-26 04:00:00 PDT.',
                type => 'OAuthException', code => 190, error_subcode => 463, fbtrace_id => 'A_muLgNXB2rhzyBV_3YbJeo' } })] if $kind eq 'token';
        return _json($status, { error => { message => $status == 429 ? 'Application request limit reached' : 'An unknown error has occurred.',
            type => 'OAuthException', code => $status == 429 ? 4 : 1, is_transient => JSON::PP::true, fbtrace_id => 'AbC123' } });
    }
    return _json(401, { data => {}, error => { code => 'access_token_invalid',
        message => 'The access token is invalid or not found in the request.', log_id => '20220829194722CBE87ED59D524E727021' } })
        if $kind eq 'token';
    return _json($status, { data => {}, error => { code => $status == 429 ? 'rate_limit_exceeded' : 'internal_error',
        message => $status == 429 ? 'API rate limit exceeded' : 'Something is wrong. Please try again later.', log_id => '2022082919472' } });
}

sub _serve {
    my ($self, $req, $handler) = @_;
    my ($items, $m) = $self->_state;
    my $delay = $m->{delay} // 0;
    my $answer;
    if (-e "$self->{dir}/busy" && unlink "$self->{dir}/busy") {
        my $r = $self->_error(429, 'busy');
        $r->[1]{'Retry-After'} = $m->{busy_once};
        $answer = $r;
    } elsif ($m->{quota} && $self->{platform} eq 'youtube') {
        $answer = _json(403, { error => { code => 403,
            message => 'The request cannot be completed because you have exceeded your <a href="/youtube/v3/getting-started#quota">quota</a>.',
            errors => [{ message => 'The request cannot be completed because you have exceeded your quota.',
                domain => 'youtube.quota', reason => 'quotaExceeded' }] } });
    } elsif ($m->{fail}) {
        $answer = $self->_error($m->{fail}, 'fail');
    } elsif ($m->{malformed}) {
        $answer = [200, { 'Content-Type' => 'application/json' }, '{"items": [ {"id": "oops"'];
    } else {
        my ($token) = ($req->{headers}{authorization} // '') =~ /^Bearer (\S+)$/;
        $token //= $req->{params}{access_token} if $self->{platform} eq 'instagram';
        my %issued = map { $_ => 1 } ($self->{oauth} ? $self->{oauth}->tokens : ()), @{ $self->{tokens} };
        my %revoked = map { $_ => 1 } @{ $m->{revoked} // [] };
        if (!defined $token || !$issued{$token} || $revoked{$token}) {
            $answer = $self->_error(401, 'token');
        } else {
            $answer = $handler->($self, $req, $items, $m);
        }
    }
    $answer->[3] = $delay if $delay;
    return $answer;
}

# n items from offset (a slice in grep would autovivify the array's end).
sub _slice { my ($items, $offset, $n) = @_; my $end = $offset + $n > @$items ? @$items : $offset + $n; @$items[$offset .. $end - 1] }
sub _page_size { my ($m, $asked, $max) = @_; my $n = $m->{page_size} // $max; $n = $asked if $asked && $asked < $n; $n }
sub _iso { my @t = gmtime($_[0] // 0); sprintf '%04d-%02d-%02dT%02d:%02d:%02dZ', $t[5] + 1900, $t[4] + 1, @t[3, 2, 1, 0] }

# --- YouTube -----------------------------------------------------------------
sub _yt_channels {
    my ($self, $req) = @_;
    return _json(400, { error => { code => 400, message => 'No filter selected.' } }) unless ($req->{params}{mine} // '') eq 'true';
    return _json(200, { kind => 'youtube#channelListResponse', etag => 'x1Yp8PQ7', pageInfo => { totalResults => 1, resultsPerPage => 5 },
        items => [{ kind => 'youtube#channel', etag => 'kYq3mW5k', id => 'UC_x5XG1OV2P6uZZ5FSM9Ttw',
            contentDetails => { relatedPlaylists => { likes => '', uploads => 'UU_x5XG1OV2P6uZZ5FSM9Ttw' } } }] });
}
sub _yt_playlist {
    my ($self, $req, $items, $m) = @_;
    my $q = $req->{params};
    return _json(404, { error => { code => 404, message => 'The playlist identified with the request\'s playlistId parameter cannot be found.',
        errors => [{ domain => 'youtube.playlistItem', reason => 'playlistNotFound' }] } })
        unless ($q->{playlistId} // '') eq 'UU_x5XG1OV2P6uZZ5FSM9Ttw';
    my ($offset) = ($q->{pageToken} // 'C0QAA') =~ /^C(\d+)Q/ or return _json(400, { error => { code => 400,
        message => 'The request specifies an invalid page token.', errors => [{ reason => 'invalidPageToken' }] } });
    my $n = _page_size($m, $q->{maxResults} || 5, 50);
    my @page = _slice($items, $offset, $n);
    my %doc = (kind => 'youtube#playlistItemListResponse', etag => 'TwSA9klp', pageInfo => { totalResults => scalar @$items + 1, resultsPerPage => $n },
        items => [map { { kind => 'youtube#playlistItem', etag => 'NW6J', id => "PLI$_->{id}",
            snippet => { publishedAt => _iso($_->{created}), channelId => 'UC_x5XG1OV2P6uZZ5FSM9Ttw', title => $_->{title},
                description => $_->{description} // '', thumbnails => {}, playlistId => $q->{playlistId}, position => 0,
                resourceId => { kind => 'youtube#video', videoId => $_->{id} } },
            contentDetails => { videoId => $_->{id}, videoPublishedAt => _iso($_->{created}) } } } @page]);
    $doc{nextPageToken} = 'C' . ($offset + $n) . 'QAA' if $offset + $n < @$items;
    $doc{prevPageToken} = 'C' . ($offset - $n) . 'QAQ' if $offset > 0;
    return _json(200, \%doc);
}
sub _yt_videos {
    my ($self, $req, $items) = @_;
    my @ids = split /,/, $req->{params}{id} // '';
    return _json(400, { error => { code => 400, message => 'Too many ids' } }) if @ids > 50;
    my %by = map { $_->{id} => $_ } @$items;
    my @out;
    for my $v (grep { defined } map { $by{$_} } @ids) {
        my %snippet = (publishedAt => _iso($v->{created}), channelId => 'UC_x5XG1OV2P6uZZ5FSM9Ttw', title => $v->{title},
            description => $v->{description} // '', channelTitle => 'StreamVibe Test', liveBroadcastContent => 'none',
            thumbnails => { default => { url => "https://i.ytimg.com/vi/$v->{id}/default.jpg", width => 120, height => 90 },
                            high => { url => "https://i.ytimg.com/vi/$v->{id}/hqdefault.jpg", width => 480, height => 360 } });
        $snippet{tags} = $v->{tags} if $v->{tags} && @{ $v->{tags} };
        my %stats;
        $stats{viewCount} = "$v->{views}" if defined $v->{views};
        $stats{likeCount} = "$v->{likes}" if defined $v->{likes};
        $stats{commentCount} = "$v->{comments}" if defined $v->{comments};
        my $d = $v->{duration} // 0;
        push @out, { kind => 'youtube#video', etag => '7E5g', id => $v->{id}, snippet => \%snippet, statistics => \%stats,
            contentDetails => { duration => sprintf('PT%dM%dS', int($d / 60), $d % 60), dimension => '2d', definition => 'hd' } };
    }
    return _json(200, { kind => 'youtube#videoListResponse', etag => 'UfLr', items => \@out,
        pageInfo => { totalResults => scalar @out, resultsPerPage => scalar @out } });
}

# --- Instagram ---------------------------------------------------------------
sub _ig_me {
    return _json(200, { user_id => '17841405822304914', username => 'streamvibe.test', id => '7890123456789012' });
}
sub _ig_media {
    my ($self, $req, $items, $m) = @_;
    my $q = $req->{params};
    return _json(400, { error => { message => '(#100) Tried accessing nonexisting field', type => 'OAuthException', code => 100 } })
        unless ($q->{fields} // '') =~ /\bid\b/ && $q->{fields} =~ /\bcaption\b/;
    my $offset = 0;
    if (defined $q->{after}) {
        ($offset) = $q->{after} =~ /^QVFI(\d+)$/ or return _json(400, { error => { message => 'Invalid cursor', type => 'OAuthException', code => 100 } });
    }
    my $n = _page_size($m, $q->{limit} || 25, 100);
    my @page = _slice($items, $offset, $n);
    my @data = map {
        my $v = $_;
        my %o = (id => $v->{id}, media_type => 'VIDEO', media_product_type => 'REELS',
            media_url => "https://scontent.cdninstagram.com/o1/v/$v->{id}.mp4?efg=1",
            permalink => "https://www.instagram.com/reel/$v->{id}/",
            thumbnail_url => "https://scontent.cdninstagram.com/v/$v->{id}_n.jpg?stp=" . time,
            timestamp => _iso($v->{created}) =~ s/Z$/+0000/r);
        $o{caption} = join(' ', grep { length } $v->{title}, ($v->{description} ? "\n$v->{description}" : ()),
            map { "#$_" } @{ $v->{tags} // [] }) if defined $v->{title};
        $o{like_count} = $v->{likes} if defined $v->{likes};
        $o{comments_count} = $v->{comments} if defined $v->{comments};
        \%o;
    } @page;
    my %doc = (data => \@data);
    if (@page) {
        $doc{paging} = { cursors => { before => "QVFI$offset", after => 'QVFI' . ($offset + @page) } };
        # An absolute URL on the real host with the token in it, as Graph
        # answers: a client must not follow it.
        $doc{paging}{next} = 'https://graph.instagram.com/v21.0/17841405822304914/media?access_token=IGAAQ-leaked&limit=' . $n
            . '&after=QVFI' . ($offset + @page) if $offset + @page < @$items;
    }
    return _json(200, \%doc);
}

# --- TikTok --------------------------------------------------------------------
# video/query: the account's videos among filters.video_ids (at most 20),
# private ones included ("verifies that the videos belong to the user").
sub _tt_query {
    my ($self, $req, $items) = @_;
    my $ids = ref $req->{json} eq 'HASH' && ref $req->{json}{filters} eq 'HASH' ? $req->{json}{filters}{video_ids} : undef;
    return _json(400, { data => {}, error => { code => 'invalid_params', message => 'filters.video_ids: 1 to 20 ids', log_id => '1' } })
        unless ref $ids eq 'ARRAY' && @$ids >= 1 && @$ids <= 20 && ($req->{params}{fields} // '') =~ /\bid\b/;
    my %want = map { $_ => 1 } @$ids;
    return _json(200, { data => { videos => [map { +{ id => $_->{id}, title => $_->{title} } } grep { $want{ $_->{id} } } @$items],
        cursor => 0, has_more => JSON::PP::false }, error => { code => 'ok', message => '', log_id => '2022' } });
}

sub _tt_list {
    my ($self, $req, $items, $m) = @_;
    my $fields = $req->{params}{fields} // '';
    my $body = $req->{json};
    return _json(400, { data => {}, error => { code => 'invalid_params', message => 'fields is required', log_id => '1' } })
        unless $fields =~ /\bid\b/ && ref $body eq 'HASH';
    my $max = $body->{max_count} // 10;
    return _json(400, { data => {}, error => { code => 'invalid_params', message => 'max_count must be at most 20', log_id => '1' } })
        if $max > 20;
    my %private = map { $_ => 1 } @{ $m->{private} // [] };
    my @rest = sort { $b->{created} <=> $a->{created} } grep { !$private{ $_->{id} } } @$items;
    @rest = grep { $_->{created} * 1000 < $body->{cursor} } @rest if defined $body->{cursor};
    my $n = _page_size($m, $max, 20);
    my @page = splice(@rest, 0, $n);
    my @videos = map {
        my $v = $_;
        my %o = (id => $v->{id}, title => $v->{title} // '', video_description => join(' ', grep { length } $v->{description} // '', map { "#$_" } @{ $v->{tags} // [] }),
            duration => $v->{duration} // 0, create_time => $v->{created},
            cover_image_url => "https://p16-sign-sg.tiktokcdn.com/tos/$v->{id}~tplv-noop.image?x-expires=" . (time + 21600) . '&x-signature=abc',
            share_url => "https://www.tiktok.com/\@streamvibe/video/$v->{id}?utm_campaign=tt4d_open_api",
            embed_link => "https://www.tiktok.com/static/profile-video?id=$v->{id}");
        $o{view_count} = $v->{views} if defined $v->{views};
        $o{like_count} = $v->{likes} if defined $v->{likes};
        $o{comment_count} = $v->{comments} if defined $v->{comments};
        $o{share_count} = 1;
        \%o;
    } @page;
    my $cursor = @page ? $page[-1]{created} * 1000 : ($body->{cursor} // 0);
    return _json(200, { data => { videos => \@videos, cursor => $cursor, has_more => @rest ? JSON::PP::true : JSON::PP::false },
        error => { code => 'ok', message => '', log_id => '20220829194722CBE87ED59D524E727021' } });
}

1;
