namespace Loop.Email;

using Loop.Domain.Channels;
using Loop.Domain.Connectors;
using Loop.Domain.Runs;
using Loop.Runtime;
using MailKit;
using MailKit.Net.Smtp;
using Microsoft.Extensions.Logging;
using MimeKit;

/// <summary>
/// A mailbox as a chat: every thread is a Loop channel, bound by the Message-ID of its first mail;
/// a mail from a whitelisted sender joins the channel of the thread it answers (its In-Reply-To or
/// References name a mail of the thread, or one of Loop's replies, whose Message-ID carries its
/// channel), or starts a channel named after its subject. Each stored message keeps its own
/// Message-ID, so a mail fetched twice (a crash before it was flagged seen) is stored once. The run's
/// reply goes back over SMTP to the sender, threaded under the mail that asked (In-Reply-To,
/// References, "Re: subject"), from the connector's address.
/// </summary>
public sealed class EmailChatAdapter : IChatAdapter
{
    /// <summary>Loop's replies have Message-IDs "loop.&lt;channel id&gt;.&lt;run id&gt;@domain".</summary>
    private const string ReplyIdPrefix = "loop.";
    private const int SendAttempts = 5;

    private readonly EmailOptions _options;
    private readonly ChannelService _channels;
    private readonly ILoopEvents _events;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly object _gate = new();
    private readonly Dictionary<string, Task> _outboxTails = new(StringComparer.Ordinal);
    private readonly HashSet<string> _strangersLogged = new(StringComparer.OrdinalIgnoreCase);
    private ConnectorRunFeed? _runs;
    private EmailInbox? _inbox;
    private CancellationTokenSource? _inboxStop;
    private Task? _inboxLoop;
    private int _disposed;

    public EmailChatAdapter(Connector connector, EmailOptions options, ChannelService channels, ILoopEvents events, TimeProvider time, ILoggerFactory loggers)
    {
        Connector = connector;
        _options = options;
        _channels = channels;
        _events = events;
        _time = time;
        _logger = loggers.CreateLogger<EmailChatAdapter>();
    }

    public Connector Connector { get; }

    private string Platform => Connector.Id;

    public string Status => _inbox?.Status ?? "not connected";

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _runs = ConnectorRunFeed.Start(_events, _channels, Connector, OnRunEventAsync, _time, _logger);
        return Task.CompletedTask;
    }

    public Task ConnectAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (_inbox is null && _disposed == 0)
            {
                _inboxStop = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                _inbox = new EmailInbox(_options, OnMailAsync, _time, _logger);
                var inbox = _inbox;
                var stop = _inboxStop.Token;
                _inboxLoop = Task.Run(() => inbox.RunAsync(stop), CancellationToken.None);
            }
        }
        return Task.CompletedTask;
    }

    public async Task DisconnectAsync(CancellationToken cancellationToken)
    {
        Task? loop;
        CancellationTokenSource? stop;
        lock (_gate)
        {
            (loop, stop, _inboxLoop, _inboxStop, _inbox) = (_inboxLoop, _inboxStop, null, null, null);
        }
        if (stop is not null)
        {
            await stop.CancelAsync();
            try
            {
                await (loop ?? Task.CompletedTask).WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None);
            }
            catch (Exception error) when (error is TimeoutException or OperationCanceledException)
            {
                _logger.LogWarning("The IMAP connection of connector {Connector} did not close within 10 s", Platform);
            }
            stop.Dispose();
        }
    }

    public Task ChannelRegisteredAsync(Channel channel, CancellationToken cancellationToken) => Task.CompletedTask;

    // ---- inbound ----

    private async Task<MailOutcome> OnMailAsync(MimeMessage mail, UniqueId uid, CancellationToken cancellationToken)
    {
        var sender = mail.From.Mailboxes.FirstOrDefault()?.Address?.Trim().ToLowerInvariant() ?? "";
        if (!Allowed(sender))
        {
            if (_strangersLogged.Add($"{uid.Validity}/{uid.Id}"))
            {
                _logger.LogWarning("Email connector {Connector}: mail from {Sender} (\"{Subject}\") left unread: the sender is not in allowed_senders",
                    Platform, sender.Length == 0 ? "no sender" : sender, mail.Subject);
            }
            return MailOutcome.LeftUnread;
        }
        if (mail.Headers[HeaderId.AutoSubmitted] is { } auto && !auto.Trim().StartsWith("no", StringComparison.OrdinalIgnoreCase))
        {
            // An out-of-office answer or a bounce: answering it could go on forever.
            if (_strangersLogged.Add($"{uid.Validity}/{uid.Id}"))
            {
                _logger.LogInformation("Email connector {Connector}: automatic mail from {Sender} (Auto-Submitted: {Auto}) left unread", Platform, sender, auto.Trim());
            }
            return MailOutcome.LeftUnread;
        }

        // A mail without a Message-ID gets one that is the same each time it is fetched.
        var messageId = mail.MessageId is { Length: > 0 } id ? id : $"imap.{uid.Validity}.{uid.Id}@{_options.Imap.Host}";
        var thread = await ThreadOfAsync(mail, messageId, cancellationToken);
        var content = MailText.Of(mail, thread.Starts ? mail.Subject ?? "" : null);
        try
        {
            var (channel, stored) = await _channels.PostChatMessageAsync(
                new ChatInbound(Platform, thread.Key, thread.Name, sender, content, messageId, Connector.Kind), cancellationToken);
            _logger.LogInformation("Mail {MessageId} from {Sender} stored as message {StoredId} of channel {ChannelId}", messageId, sender, stored.Id, channel.Id);
            return MailOutcome.Stored;
        }
        catch (LoopValidationException invalid)
        {
            _logger.LogError("Email connector {Connector}: mail {MessageId} from {Sender} cannot be stored ({Error}); it is left unread", Platform, messageId, sender, invalid.Message);
            return MailOutcome.LeftUnread;
        }
    }

    private bool Allowed(string sender)
    {
        if (sender.Length == 0 || sender.Equals(_options.Address, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }
        var at = sender.LastIndexOf('@');
        return Connector.Allowed.Any(entry => entry == "*" || entry == sender || (at >= 0 && entry == sender[at..]));
    }

    private sealed record Thread(string Key, string Name, bool Starts);

    /// <summary>The thread a mail belongs to: the channel of the nearest mail it answers that Loop
    /// knows (a thread's first mail, or one of Loop's replies); else a new thread, keyed by the first
    /// mail it names (so later mails of the same thread find it) or by its own Message-ID.</summary>
    private async Task<Thread> ThreadOfAsync(MimeMessage mail, string messageId, CancellationToken cancellationToken)
    {
        var answered = new List<string>();
        if (mail.InReplyTo is { Length: > 0 } parent)
        {
            answered.Add(parent);
        }
        answered.AddRange(mail.References.Reverse().Where(r => !answered.Contains(r)));
        answered.Add(messageId);
        foreach (var candidate in answered)
        {
            if (ChannelOfReply(candidate) is { } channelId)
            {
                try
                {
                    var channel = await _channels.GetChannelAsync(Caller.User, channelId, cancellationToken);
                    if (channel.Platform == Platform && channel.ExternalId is { } key)
                    {
                        return new Thread(key, channel.Name, false);
                    }
                }
                catch (LoopNotFoundException)
                {
                }
            }
            else if (await _channels.FindChatChannelAsync(Platform, candidate, cancellationToken) is { } known)
            {
                return new Thread(candidate, known.Name, false);
            }
        }
        return new Thread(mail.References.FirstOrDefault() ?? mail.InReplyTo ?? messageId, MailText.BaseSubject(mail.Subject), true);
    }

    private static string? ChannelOfReply(string messageId)
    {
        if (!messageId.StartsWith(ReplyIdPrefix, StringComparison.Ordinal))
        {
            return null;
        }
        var local = messageId[ReplyIdPrefix.Length..];
        var dot = local.IndexOf('.', StringComparison.Ordinal);
        return dot > 0 ? local[..dot] : null;
    }

    // ---- outbound: run events ----

    private Task OnRunEventAsync(ChatRunEvent run, CancellationToken cancellationToken)
    {
        if (run.Ended)
        {
            Track(run.Channel.Id, () => _channels.PostReplyOnceAsync(run.Run.Id, ct => ReplyAsync(run.Channel, run.Chat, run.Run, run.Text, ct), _stop.Token));
        }
        return Task.CompletedTask;
    }

    private async Task ReplyAsync(Channel channel, string root, Run run, string fallback, CancellationToken cancellationToken)
    {
        var messages = await _channels.ListRunMessagesAsync(run.Id, cancellationToken);
        var trigger = messages.LastOrDefault(m => m.Role == MessageRole.User && m.ExternalId is not null && m.Author.Contains('@', StringComparison.Ordinal))
            ?? (await _channels.ListLatestMessagesAsync(Caller.User, channel.Id, null, 50, cancellationToken))
                .LastOrDefault(m => m.Role == MessageRole.User && m.ExternalId is not null && m.Author.Contains('@', StringComparison.Ordinal));
        if (trigger is null || !MailboxAddress.TryParse(trigger.Author, out var to))
        {
            _logger.LogWarning("Run {RunId} of channel {ChannelId} ended, but no mail of the thread says whom to answer", run.Id, channel.Id);
            return;
        }
        var reply = messages.LastOrDefault(m => m.Role != MessageRole.User)?.Content ?? fallback;
        var mail = new MimeMessage
        {
            Subject = "Re: " + channel.Name,
            MessageId = $"{ReplyIdPrefix}{channel.Id}.{run.Id}@{Domain(_options.Address)}",
            Date = _time.GetUtcNow(),
            InReplyTo = trigger.ExternalId,
            Body = new TextPart("plain") { Text = reply },
        };
        mail.From.Add(MailboxAddress.Parse(_options.Address));
        mail.To.Add(to);
        mail.References.Add(root);
        if (trigger.ExternalId != root)
        {
            mail.References.Add(trigger.ExternalId!);
        }
        // RFC 3834: an answer made by a program; well-behaved auto-responders leave it alone.
        mail.Headers.Add(HeaderId.AutoSubmitted, "auto-replied");
        await SendAsync(mail, cancellationToken);
        _logger.LogInformation("Sent the reply of run {RunId} to {To} as {MessageId}", run.Id, to.Address, mail.MessageId);
    }

    private static string Domain(string address) =>
        System.Net.Mail.MailAddress.TryCreate(address, out var parsed) ? parsed.Host : "loop.invalid";

    /// <summary>Sends over SMTP, trying again on a lost connection or a temporary refusal.</summary>
    public async Task SendAsync(MimeMessage mail, CancellationToken cancellationToken)
    {
        var wait = _options.Timings.FirstRetry;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                using var smtp = new SmtpClient();
                if (_options.CertificateCheck is { } check)
                {
                    smtp.ServerCertificateValidationCallback = check;
                    smtp.CheckCertificateRevocation = false;
                }
                await smtp.ConnectAsync(_options.Smtp.Host, _options.Smtp.Port, _options.Smtp.Security, cancellationToken);
                await smtp.AuthenticateAsync(_options.Username, _options.Password, cancellationToken);
                await smtp.SendAsync(mail, cancellationToken);
                await smtp.DisconnectAsync(quit: true, cancellationToken);
                return;
            }
            catch (Exception error) when (attempt < SendAttempts && error is not OperationCanceledException && Transient(error))
            {
                _logger.LogWarning("Sending mail {MessageId} through {Smtp} failed (attempt {Attempt}): {Error}; again in {Wait} s",
                    mail.MessageId, _options.Smtp, attempt, error.Message, wait.TotalSeconds);
                await Task.Delay(wait, _time, cancellationToken);
                wait = TimeSpan.FromTicks(Math.Min(wait.Ticks * 2, _options.Timings.LastRetry.Ticks));
            }
        }
    }

    private static bool Transient(Exception error) => error switch
    {
        MailKit.Security.AuthenticationException => false,
        SmtpCommandException command => (int)command.StatusCode is >= 400 and < 500,
        _ => true,
    };

    /// <summary>Replies of one channel go out one after another, in the order the runs ended.</summary>
    private void Track(string channelId, Func<Task> send)
    {
        lock (_gate)
        {
            var previous = _outboxTails.GetValueOrDefault(channelId, Task.CompletedTask);
            _outboxTails[channelId] = AfterAsync(previous);
        }

        async Task AfterAsync(Task previous)
        {
            await previous.ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            try
            {
                await send();
            }
            catch (Exception error) when (error is not OperationCanceledException)
            {
                _logger.LogError(error, "Sending the reply to channel {ChannelId} by email failed", channelId);
                _events.Publish(new LoopEvent("chat.error", _time.GetUtcNow(), channelId, null, $"{Connector.Name}: sending a reply failed: {error.Message}"));
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }
        await DisconnectAsync(CancellationToken.None);
        Task[] pending;
        lock (_gate)
        {
            pending = [.. _outboxTails.Values];
        }
        try
        {
            // Replies under way are let finish for a moment before the stop cuts them off.
            await Task.WhenAll(pending).WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception)
        {
        }
        if (_runs is not null)
        {
            await _runs.DisposeAsync();
        }
        await _stop.CancelAsync();
        _stop.Dispose();
    }
}
