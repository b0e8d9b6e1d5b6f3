namespace Loop.Email;

using MailKit;
using MailKit.Net.Imap;
using MailKit.Search;
using MailKit.Security;
using Microsoft.Extensions.Logging;
using MimeKit;

/// <summary>What became of a mail the inbox handed over.</summary>
public enum MailOutcome
{
    /// <summary>In the store: flag it seen.</summary>
    Stored,

    /// <summary>Not for the agent (a stranger, an auto-reply): left unread, and not handed over again while connected.</summary>
    LeftUnread,
}

/// <summary>
/// The IMAP side of a mailbox: keeps a connection to its INBOX, hands every unseen mail to
/// <c>handle</c> and flags it \Seen only once <c>handle</c> says it is stored, then waits in IDLE
/// (or polls where the server has no IDLE) for the next. A crash between fetch and store leaves the
/// mail unseen, so it is fetched again at the next connection. Reconnects with a growing wait when
/// the connection is lost; a refused login ends it (<see cref="Status"/> "failed: …") until the
/// connector is edited.
/// </summary>
public sealed class EmailInbox(EmailOptions options, Func<MimeMessage, UniqueId, CancellationToken, Task<MailOutcome>> handle, TimeProvider time, ILogger logger)
{
    private readonly HashSet<UniqueId> _leftUnread = [];
    private volatile string _status = "connecting";
    private uint _uidValidity;

    public string Status => _status;

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var wait = options.Timings.FirstRetry;
        while (!cancellationToken.IsCancellationRequested)
        {
            var connected = false;
            try
            {
                using var imap = new ImapClient();
                if (options.CertificateCheck is { } check)
                {
                    imap.ServerCertificateValidationCallback = check;
                    imap.CheckCertificateRevocation = false;
                }
                await imap.ConnectAsync(options.Imap.Host, options.Imap.Port, options.Imap.Security, cancellationToken);
                await imap.AuthenticateAsync(options.Username, options.Password, cancellationToken);
                var inbox = imap.Inbox;
                await inbox.OpenAsync(FolderAccess.ReadWrite, cancellationToken);
                if (inbox.UidValidity != _uidValidity)
                {
                    // New numbers: what was left unread is known again by its new uid.
                    _leftUnread.Clear();
                    _uidValidity = inbox.UidValidity;
                }
                var idle = options.Timings.UseIdle && imap.Capabilities.HasFlag(ImapCapabilities.Idle);
                _status = $"connected as {options.Username} at {options.Imap} ({(idle ? "IDLE" : "polling")})";
                logger.LogInformation("Email connector connected to {Imap} as {User} ({Mode})", options.Imap, options.Username, idle ? "IDLE" : "polling");
                connected = true;
                wait = options.Timings.FirstRetry;
                await FollowAsync(imap, inbox, idle, cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (AuthenticationException refused)
            {
                _status = $"failed: {options.Imap} refused the login of {options.Username} ({refused.Message}); fix the username or password";
                logger.LogError("Email connector: {Imap} refused the login of {User}: {Error}; it stays off until the connector is edited",
                    options.Imap, options.Username, refused.Message);
                return;
            }
            catch (Exception error)
            {
                var why = Describe(error);
                _status = $"reconnecting: {why}";
                logger.LogWarning("Email connector: the connection to {Imap} {Phase}: {Error}; again in {Wait} s",
                    options.Imap, connected ? "was lost" : "failed", why, wait.TotalSeconds);
            }
            try
            {
                await Task.Delay(wait, time, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            wait = TimeSpan.FromTicks(Math.Min(wait.Ticks * 2, options.Timings.LastRetry.Ticks));
        }
    }

    private async Task FollowAsync(ImapClient imap, IMailFolder inbox, bool idle, CancellationToken cancellationToken)
    {
        var arrived = 1;
        using var wake = new WakeUp();
        void OnCountChanged(object? sender, EventArgs e)
        {
            Interlocked.Exchange(ref arrived, 1);
            wake.Fire();
        }
        inbox.CountChanged += OnCountChanged;
        try
        {
            while (true)
            {
                if (Interlocked.Exchange(ref arrived, 0) == 1 || !idle)
                {
                    await TakeUnseenAsync(inbox, cancellationToken);
                }
                if (Volatile.Read(ref arrived) == 1)
                {
                    continue;
                }
                if (idle)
                {
                    using var done = wake.Arm();
                    done.CancelAfter(options.Timings.IdleFor);
                    await imap.IdleAsync(done.Token, cancellationToken);
                }
                else
                {
                    await Task.Delay(options.Timings.PollEvery, time, cancellationToken);
                    await imap.NoOpAsync(cancellationToken);
                }
            }
        }
        finally
        {
            inbox.CountChanged -= OnCountChanged;
        }
    }

    private async Task TakeUnseenAsync(IMailFolder inbox, CancellationToken cancellationToken)
    {
        var unseen = await inbox.SearchAsync(SearchQuery.NotSeen, cancellationToken);
        foreach (var uid in unseen.Where(u => !_leftUnread.Contains(u)))
        {
            // BODY.PEEK: fetching does not flag it seen.
            var message = await inbox.GetMessageAsync(uid, cancellationToken);
            var outcome = await handle(message, new UniqueId(inbox.UidValidity, uid.Id), cancellationToken);
            if (outcome == MailOutcome.Stored)
            {
                await inbox.AddFlagsAsync(uid, MessageFlags.Seen, silent: true, cancellationToken);
            }
            else
            {
                _leftUnread.Add(uid);
            }
        }
    }

    private static string Describe(Exception error) => error switch
    {
        SslHandshakeException => $"TLS with {error.Message.Split('\n')[0].TrimEnd()}",
        ImapProtocolException or ImapCommandException or IOException or System.Net.Sockets.SocketException => error.Message,
        _ => $"{error.GetType().Name}: {error.Message}",
    };

    /// <summary>Ends the current IDLE when mail arrives.</summary>
    private sealed class WakeUp : IDisposable
    {
        private readonly object _gate = new();
        private CancellationTokenSource? _current;

        public CancellationTokenSource Arm()
        {
            lock (_gate)
            {
                _current = new CancellationTokenSource();
                return _current;
            }
        }

        public void Fire()
        {
            lock (_gate)
            {
                try
                {
                    _current?.Cancel();
                }
                catch (ObjectDisposedException)
                {
                }
            }
        }

        public void Dispose()
        {
            lock (_gate)
            {
                _current = null;
            }
        }
    }
}
