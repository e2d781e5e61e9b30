# A sandboxed worker's waiter, inside srt (sandbox/boxtty.py starts it; perl-base only:
# ~1 MB where the Python pty relay it replaces took ~4).
#
#   perl boxwait.pl SETSID_NR TIOCSCTTY NOTE_FLAGS NOTE -- ARGV...
#
# It makes looop's PTY (its stdin) the controlling terminal of a new session, so the worker
# has job control, ^C from looop's side signals its foreground job and a resize reaches it as
# SIGWINCH. Nothing outside the box reads that PTY's input: a push into it (TIOCSTI) stays
# inside. Then it starts the worker (ARGV) as its child and waits: NOTE (a file in the worker's
# TMPDIR, "-" for none) says `run` once the worker runs its program (a `bash -c` line once bash
# became another program, or stayed a shell for a second), then `exit N` or `signal N`; the
# waiter exits with the worker's code, or 128+N for signal N. SETSID_NR, TIOCSCTTY and
# NOTE_FLAGS (open's flags for the note, O_NOFOLLOW among them) are this machine's numbers,
# handed in by looop: perl-base has no POSIX module worth its memory.
use strict;

my ($setsid, $tiocsctty, $flags, $note, $dash) = splice(@ARGV, 0, 5);
if (!defined $dash || $dash ne '--' || !@ARGV) {
    print STDERR "usage: boxwait.pl SETSID_NR TIOCSCTTY NOTE_FLAGS NOTE -- ARGV...\n";
    exit 2;
}

sub say_note {
    return if $note eq '-';
    my $tmp = "$note.$$";
    sysopen(my $fh, $tmp, $flags, 0600) or return;  # looop then reads the plain code
    syswrite($fh, "$_[0]\n");
    close($fh);
    rename($tmp, $note);
}

# (Name, NSpid...) of one /proc status file
sub status_of {
    my ($name, @nspid) = ('');
    if (open(my $fh, '<', $_[0])) {
        while (<$fh>) {
            $name = $1 if /^Name:\s*(.*?)\s*$/;
            @nspid = split(' ', $1) if /^NSpid:\s*(.*)$/;
        }
    }
    return ($name, @nspid);
}

# The program name of our child $_[0]: srt's seccomp helper may run us in a pid namespace of
# our own below the one /proc shows, so the child is the entry whose NSpid, as deep as ours,
# ends in its pid.
my ($own, @mine) = status_of('/proc/self/status');
sub program_of {
    opendir(my $dh, '/proc') or return undef;
    for my $entry (grep { /^\d+$/ } readdir($dh)) {
        my ($name, @nspid) = status_of("/proc/$entry/status");
        return $name if @nspid && @nspid == @mine && $nspid[-1] == $_[0];
    }
    return undef;
}

syscall($setsid + 0);  # fails only where we lead a session already: it is ours then
ioctl(STDIN, $tiocsctty + 0, 0);

my @reset = qw(HUP INT QUIT TERM TSTP TTIN TTOU CHLD PIPE ALRM USR1 USR2 WINCH XFSZ);
pipe(my $exec_r, my $exec_w) or die "looop: pipe: $!\n";  # close-on-exec, as perl opens them
my $pid = fork();
die "looop: fork: $!\n" unless defined $pid;
if ($pid == 0) {
    close($exec_r);
    $SIG{$_} = 'DEFAULT' for @reset;
    # whatever srt or bubblewrap left open stays out of the worker
    if (opendir(my $dh, '/proc/self/fd')) {
        my @fds = grep { /^\d+$/ && $_ > 2 && $_ != fileno($exec_w) } readdir($dh);
        closedir($dh);
        for my $fd (@fds) {
            if (open(my $fh, '<&=', $fd)) {
                close($fh);
            }
        }
    }
    { exec { $ARGV[0] } @ARGV; }
    my $errno = $! + 0;
    print STDERR "looop: cannot run $ARGV[0]: $!\r\n";
    syswrite($exec_w, "x");
    exit(($errno == 2 || $errno == 20) ? 127 : 126);  # ENOENT, ENOTDIR: as a shell says
}
close($exec_w);
# the worker's foreground job gets ^C, ^Z and ^\ from the terminal, not us; a hangup of
# looop's PTY and a TERM meant for the worker are passed on
$SIG{$_} = 'IGNORE' for qw(INT QUIT TSTP TTIN TTOU);
$SIG{$_} = sub { kill($_[0], $pid); kill($_[0], -$pid) } for qw(HUP TERM);

my $status;
my $failed = sysread($exec_r, my $byte, 1);  # 0 (end of file): exec'd
close($exec_r);
if (!$failed) {
    if ($ARGV[0] =~ m{(^|/)bash$} && defined $ARGV[1] && $ARGV[1] eq '-c') {
        # until it is seen as bash, a name of our own may still be the unexec'd child
        my $seen_bash = 0;
        for (1 .. 50) {
            if (waitpid($pid, 1) == $pid) {  # WNOHANG
                $status = $?;
                last;
            }
            my $name = program_of($pid);
            $seen_bash ||= (defined $name && $name eq 'bash');
            last if defined $name && $name ne 'bash' && ($seen_bash || $name ne $own);
            select(undef, undef, undef, 0.02);
        }
    }
    say_note('run') unless defined $status;
}
# reap every child (as a pid namespace's first process we adopt orphans) until ours ended
while (!defined $status) {
    my $got = waitpid(-1, 0);
    if ($got == $pid) {
        $status = $?;
    } elsif ($got < 0 && $! + 0 != 4) {  # but EINTR: a signal passed on meanwhile
        last;
    }
}
$status = 0 unless defined $status;
if ($status & 127) {
    say_note('signal ' . ($status & 127));
    exit(128 + ($status & 127));
}
say_note('exit ' . ($status >> 8));
exit($status >> 8);
