namespace Loop.Bench;

using System.Globalization;
using System.Net;
using System.Threading.Channels;
using Loop.Config;
using Loop.Domain.Agents;
using Loop.Domain.Connectors;
using Loop.Email;
using Loop.Hosting;
using Loop.Runtime;
using Loop.Telegram;
using Loop.Telegram.Tests;
using Loop.Testing;
using Loop.WhatsApp;
using Loop.WhatsApp.Tests;
using MailKit;
using MailKit.Net.Imap;
using Microsoft.Extensions.DependencyInjection;
using MimeKit;

/// <summary>
/// (k) A chat platform's inbound message to the point where Loop would ask Docker to create the
/// container (the call of <see cref="InstantSandbox"/>, as in (a)), through the production
/// connectors of Telegram (Bot API double, long polling), WhatsApp (Cloud API double, signed webhook
/// to the node's API) and email (real Dovecot with IDLE and Exim). Messages go one at a time,
/// round-robin over the chats, each answered at the platform before the next is sent, so none
/// merge and none queue. Baseline: (a)'s path, <see cref="ChannelService.PostMessageAsync"/>.
/// </summary>
public static class ChatInboundBench
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    public static async Task<int> RunAsync(BenchArgs args, CancellationToken cancellationToken)
    {
        var home = args.Get("home");
        var messages = args.Int("messages", 200);
        var warmup = args.Int("warmup", 20);
        var chatCount = args.Int("chats", 20);
        var platforms = args.Get("platforms", "telegram,whatsapp,email").Split(',', StringSplitOptions.RemoveEmptyEntries);
        if (platforms.Except(["telegram", "whatsapp", "email"]).FirstOrDefault() is { } unknown)
        {
            throw new BenchFailure($"unknown platform '{unknown}' (telegram, whatsapp, email)");
        }
        var total = warmup + messages;
        var time = new MonotonicTime();
        var sandbox = new InstantSandbox(time);
        var runs = new AnsweredRuns(sandbox);

        await using var telegram = await TelegramDouble.StartAsync(time, cancellationToken);
        await using var whatsapp = await WhatsAppDouble.StartAsync();
        await using var mail = platforms.Contains("email") ? await MailServer.StartNewAsync(cancellationToken) : null;
        var loopMailbox = mail is null ? null : await mail.AddUserAsync("loop@test.local", ct: cancellationToken);
        var alice = mail is null ? null : await mail.AddUserAsync("alice@test.local", ct: cancellationToken);

        var connectors = new List<ConfiguredConnector>();
        void Add(ConnectorKind kind, Dictionary<string, string?> settings, IReadOnlyList<string> allowed) =>
            connectors.Add(new ConfiguredConnector(kind, ConnectorSpec.For(kind).Check(settings, allowed)));
        if (platforms.Contains("telegram"))
        {
            Add(ConnectorKind.Telegram, new() { ["token"] = TelegramDouble.Token, ["api_url"] = telegram.BaseUrl }, ["*"]);
        }
        if (platforms.Contains("whatsapp"))
        {
            Add(ConnectorKind.WhatsApp, new()
            {
                ["phone_number_id"] = WhatsAppDouble.PhoneNumberId,
                ["access_token"] = WhatsAppDouble.AccessToken,
                ["app_secret"] = WhatsAppDouble.AppSecret,
                ["verify_token"] = WhatsAppDouble.VerifyToken,
                ["api_url"] = whatsapp.ApiUrl,
            }, ["*"]);
        }
        if (mail is not null)
        {
            Add(ConnectorKind.Email, new()
            {
                ["imap"] = $"{MailServer.Host}:{mail.ImapPort}",
                ["smtp"] = $"{MailServer.Host}:{mail.SmtpPort}",
                ["username"] = loopMailbox!.Address,
                ["password"] = loopMailbox.Password,
                ["address"] = loopMailbox.Address,
                ["tls"] = "none",
            }, [alice!.Address]);
        }

        // As BenchNode.Host builds the node, plus the chat platforms `loop serve` adds as parts.
        var (options, config) = BenchNode.Options(home, args.Get("node", "loop-bench"), new Dictionary<string, string>(), runs);
        var apiAddr = $"127.0.0.1:{FreePorts.Loopback()}";
        await using var node = LoopHost.Build(options with { Config = config with { ApiAddr = apiAddr, Connectors = connectors } }, time,
            logging => LoopLogging.Configure(logging, config),
            parts => parts
                .AddSingleton<IChatAdapterFactory>(sp => new TelegramAdapters(sp, time))
                .AddSingleton<IChatAdapterFactory>(sp => new WhatsAppAdapters(sp, time))
                .AddSingleton<IChatAdapterFactory>(sp => new EmailAdapters(sp, time)));
        await node.StartAsync(cancellationToken);
        foreach (var connector in connectors)
        {
            await Eventually.WaitAsync(() => node.Get<ChatConnections>().Adapter(connector.Id)?.Status.StartsWith("connected", StringComparison.Ordinal) == true,
                $"the {connector.Id} connector connected", TimeSpan.FromSeconds(60), cancellationToken);
        }

        var measured = new Dictionary<string, Samples>(StringComparer.Ordinal)
        {
            ["baseline"] = await BaselineAsync(node, runs, time, chatCount, total, warmup, cancellationToken),
        };
        foreach (var platform in platforms)
        {
            measured[platform] = platform switch
            {
                "telegram" => await TelegramAsync(telegram, runs, time, chatCount, total, warmup, cancellationToken),
                "whatsapp" => await WhatsAppAsync(whatsapp, $"http://{apiAddr}/hooks/whatsapp", runs, time, chatCount, total, warmup, cancellationToken),
                _ => await EmailAsync(mail!, alice!, loopMailbox!, node, runs, time, chatCount, total, warmup, cancellationToken),
            };
        }

        if (args.Get("raw", "") is { Length: > 0 } raw)
        {
            // One line per measured message, for looking at spikes: platform, index, to-sandbox, to-reply (ms).
            await File.WriteAllLinesAsync(raw, measured.SelectMany(m => m.Value.ToSandbox.Select((s, i) =>
                FormattableString.Invariant($"{m.Key},{i},{s:0.000},{m.Value.ToReply[i]:0.000}"))), cancellationToken);
        }
        new BenchResult("k", "chat inbound → container create request", Rows(measured), Notes(messages, warmup, chatCount)).Save(args.Get("out"));
        return 0;
    }

    /// <summary>Sends message <c>i</c> and returns the inbound instant; then the instant its reply reached the platform.</summary>
    private delegate Task<long> Step(int i);

    private sealed record Samples(List<double> ToSandbox, List<double> ToReply);

    private static async Task<Samples> MeasureAsync(string platform, int total, int warmup, AnsweredRuns runs, MonotonicTime time,
        Step send, Step replied, CancellationToken cancellationToken)
    {
        var samples = new Samples([], []);
        for (var i = 0; i < total; i++)
        {
            var inbound = await send(i);
            var called = await runs.NextAsync(cancellationToken);
            var reply = await replied(i);
            if (runs.Unread > 0)
            {
                throw new BenchFailure($"{platform} message {i} started more than one run");
            }
            if (i >= warmup)
            {
                samples.ToSandbox.Add(time.MsSince(inbound, called));
                samples.ToReply.Add(time.MsSince(inbound, reply));
            }
        }
        Console.Error.WriteLine($"[bench k] {platform}: {total - warmup} messages measured");
        return samples;
    }

    /// <summary>(a)'s path in the same node: a post to a channel of the node's own, "reply" = run.finished (stored).</summary>
    private static async Task<Samples> BaselineAsync(LoopHost node, AnsweredRuns runs, MonotonicTime time, int chatCount, int total, int warmup,
        CancellationToken cancellationToken)
    {
        await using var ends = new RunWaiter(node.Events, cancellationToken);
        var channels = new List<string>();
        for (var c = 0; c < chatCount; c++)
        {
            channels.Add((await node.Channels.EnsureChannelAsync(Caller.User, null, $"bench-{c}", cancellationToken)).Channel.Id);
        }
        Task<LoopEvent>? end = null;
        return await MeasureAsync("baseline", total, warmup, runs, time, async i =>
        {
            var channel = channels[i % chatCount];
            end = ends.Expect(channel, Patience);
            var at = time.GetTimestamp();
            await node.Channels.PostMessageAsync(Caller.User, channel, "bench", $"message {i}", cancellationToken);
            return at;
        }, async i =>
        {
            var finished = await end!.WaitAsync(cancellationToken);
            return finished.Kind == "run.finished" ? time.TimestampOf(finished.At) : throw new BenchFailure($"baseline run {i} ended {finished.Kind}: {finished.Text}");
        }, cancellationToken);
    }

    private static Task<Samples> TelegramAsync(TelegramDouble telegram, AnsweredRuns runs, MonotonicTime time, int chatCount, int total, int warmup,
        CancellationToken cancellationToken)
    {
        var users = Enumerable.Range(0, chatCount).Select(c => new TelegramUser(10000100 + c, $"User{c}")).ToList();
        List<TelegramCall> Replies() => telegram.CallsTo("sendMessage").Where(c => c.Status == 200).ToList();
        return MeasureAsync("telegram", total, warmup, runs, time, async i =>
        {
            var user = users[i % chatCount];
            // The bot's getUpdates is held open, as between messages in use: the update answers it.
            await telegram.WaitForLongPollAsync(timeout: Patience, cancellationToken: cancellationToken);
            var at = time.GetTimestamp();
            telegram.EnqueueMessage(TelegramChat.Private(user), user, $"message {i}");
            return at;
        }, async i =>
        {
            await Eventually.WaitAsync(() => Replies().Count > i, $"the reply to Telegram message {i}", Patience, cancellationToken);
            var reply = Replies()[i];
            var chat = users[i % chatCount].Id.ToString(CultureInfo.InvariantCulture);
            return (string?)reply.Body["text"] == "ok" && reply.Body["chat_id"]?.ToString() == chat
                ? time.TimestampOf(reply.At)
                : throw new BenchFailure($"Telegram message {i} was answered with {reply.Body.ToJsonString()}");
        }, cancellationToken);
    }

    private static Task<Samples> WhatsAppAsync(WhatsAppDouble whatsapp, string webhook, AnsweredRuns runs, MonotonicTime time, int chatCount, int total, int warmup,
        CancellationToken cancellationToken)
    {
        var numbers = Enumerable.Range(0, chatCount).Select(c => (15550000100L + c).ToString(CultureInfo.InvariantCulture)).ToList();
        return MeasureAsync("whatsapp", total, warmup, runs, time, async i =>
        {
            var notification = WhatsAppDouble.TextMessage(numbers[i % chatCount], $"message {i}", name: $"User {i % chatCount}");
            var at = time.GetTimestamp();
            using var answer = await WhatsAppDouble.NotifyAsync(webhook, notification);
            return answer.StatusCode == HttpStatusCode.OK ? at : throw new BenchFailure($"the webhook answered WhatsApp message {i} with {answer.StatusCode}");
        }, async i =>
        {
            // The double does not stamp what it is sent: polled every millisecond, after the run (so not while it is measured).
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(Patience);
            while (whatsapp.Sent.Count <= i)
            {
                await Task.Delay(1, deadline.Token);
            }
            var at = time.GetTimestamp();
            var reply = whatsapp.Sent[i];
            return reply.Text == "ok" && reply.To == numbers[i % chatCount] ? at : throw new BenchFailure($"WhatsApp message {i} was answered with {reply}");
        }, cancellationToken);
    }

    /// <summary>Alice writes in 20 threads (the first mail of each starts it, the next answer it); Loop's
    /// replies to her are stamped as her INBOX, held in IDLE throughout, reports them.</summary>
    private static async Task<Samples> EmailAsync(MailServer mail, MailUser alice, MailUser loop, LoopHost node, AnsweredRuns runs, MonotonicTime time,
        int chatCount, int total, int warmup, CancellationToken cancellationToken)
    {
        if (node.Get<ChatConnections>().Adapter("email")?.Status is { } status && !status.EndsWith("(IDLE)", StringComparison.Ordinal))
        {
            throw new BenchFailure($"the email connector does not use IDLE: {status}");
        }
        await using var inbox = await Inbox.OpenAsync(mail, alice, time, cancellationToken);
        using var smtp = await mail.ConnectSmtpAsync(alice, ct: cancellationToken);
        var threads = new string?[chatCount];
        var samples = await MeasureAsync("email", total, warmup, runs, time, async i =>
        {
            var thread = i % chatCount;
            var message = new MimeMessage { Subject = $"thread {thread}", Body = new TextPart("plain") { Text = $"message {i}" } };
            message.From.Add(MailboxAddress.Parse(alice.Address));
            message.To.Add(MailboxAddress.Parse(loop.Address));
            if (threads[thread] is { } first)
            {
                message.Subject = "Re: " + message.Subject;
                message.InReplyTo = first;
                message.References.Add(first);
            }
            threads[thread] ??= message.MessageId;
            var at = time.GetTimestamp();
            await smtp.SendAsync(message, cancellationToken);
            return at;
        }, _ => inbox.NextAsync(cancellationToken), cancellationToken);
        var replies = await inbox.CloseAsync(cancellationToken);
        await smtp.DisconnectAsync(quit: true, cancellationToken);
        return replies == total ? samples : throw new BenchFailure($"alice got {replies} replies to {total} mails");
    }

    private static List<ResultRow> Rows(Dictionary<string, Samples> measured)
    {
        var baseline = Stats.Of(measured["baseline"].ToSandbox);
        var rows = new List<ResultRow>();
        foreach (var (platform, inbound, reply, targetMs) in new[]
        {
            ("telegram", "Telegram update", "sendMessage at the Bot API double", 50),
            ("whatsapp", "WhatsApp webhook POST", "message at the Cloud API double", 50),
            ("email", "SMTP send (IMAP IDLE)", "reply in the sender's INBOX", 1000),
        })
        {
            if (!measured.TryGetValue(platform, out var samples))
            {
                continue;
            }
            var toSandbox = Stats.Of(samples.ToSandbox);
            var toReply = Stats.Of(samples.ToReply);
            rows.Add(new("k", $"{inbound} → sandbox RunAsync called, p50 / p99 / max", Spread(toSandbox), Spread(baseline),
                Stats.Num(toSandbox.P99 / baseline.P99, "0.0") + " (p99)", $"p99 < {targetMs} ms", BenchResult.Verdict(toSandbox.P99 < targetMs)));
            rows.Add(new("k", $"{inbound} → {reply}, p50 / p99 / max", Spread(toReply), "-", "-", "(info)", "-"));
        }
        var stored = Stats.Of(measured["baseline"].ToReply);
        rows.Add(new("k", "baseline: PostMessageAsync → reply stored (run.finished), p50 / p99 / max", Spread(stored), "-", "-", "(info)", "-"));
        return rows;
    }

    private static string Spread(Stats s) => $"{Stats.Ms(s.P50)} / {Stats.Ms(s.P99)} / {Stats.Ms(s.Max)}";

    private static List<string> Notes(int messages, int warmup, int chatCount) =>
    [
        $"(k) one in-process LoopHost (one silo, real SQLite store in a fresh LOOP_HOME, console logs at the default level, its API listening on loopback) with InstantSandbox, as (a), and the production Telegram, WhatsApp and email connectors from config (TelegramAdapters, WhatsAppAdapters, EmailAdapters, default timings). Per platform {messages} messages measured after {warmup} warm-up ones, sent one at a time round-robin over {chatCount} chats (Telegram private chats, WhatsApp numbers, email threads of one sender); each is run and its reply has reached the platform before the next is sent: no merging, no queueing. The baseline ran first in the same node, over {chatCount} channels of its own.",
        "(k) 'sandbox RunAsync called' = first line of ISandbox.RunAsync (InstantSandbox), where ContainerSandbox sends Docker's create request, the point (a) measures. The baseline (column 'baseline') is (a)'s path: from just before ChannelService.PostMessageAsync (so including the store append, unlike (a)'s 'accepted') to that call.",
        "(k) Telegram: Bot API double (tests/Loop.Telegram.Tests/TelegramDouble.cs) on loopback, long polling with Telegram.Bot; timed from just before TelegramDouble.EnqueueMessage while the bot's getUpdates is held open, so it includes the long poll's answer, Telegram.Bot's parsing, the adapter's handling and PostChatMessageAsync (channel lookup, store append, wake) and the run's start. Reply = the double's stamp of the successful sendMessage call (the reply's HTML).",
        "(k) WhatsApp: Cloud API double (tests/Loop.WhatsApp.Tests/WhatsAppDouble.cs); timed from just before the signed notification (X-Hub-Signature-256) is POSTed to the node's /hooks/whatsapp over a kept-alive connection: Kestrel, the API's hook route, signature check, parse, PostChatMessageAsync and the run's start (the mark-read call to the double on run.queued runs beside it). Reply = the bench sees the send at the double (polled every 1 ms after the run returned).",
        "(k) email: private Dovecot (IMAP IDLE, inotify) and Exim from tests/Loop.Testing/MailServer.cs on loopback, no TLS; timed from just before MailKit's SmtpClient.SendAsync of the mail on the sender's open, logged-in SMTP connection, so it includes SMTP submission, Exim's delivery over LMTP to Dovecot, Dovecot's IDLE notification to the connector, its fetch of the mail, PostChatMessageAsync and the run's start. Dovecot 2.3 holds each IDLE notification 500 ms after the mailbox changed (NOTIFY_DELAY_MSECS in lib-storage's mailbox-watch.c, not a setting): about 500 ms of this number, and twice that of the reply's, are the server's. A thread's later mails answer its first (In-Reply-To, References). Reply = the sender's INBOX, held in IDLE by the bench throughout, reports the reply (connector's SMTP send, Exim, LMTP, IDLE).",
    ];

    /// <summary>The node's sandbox: <see cref="InstantSandbox"/>, with the runs it answered in order. Runs
    /// are not awaited per channel, as <see cref="RunWaiter"/> does, because a chat's channel exists only
    /// once its first message made it.</summary>
    private sealed class AnsweredRuns(InstantSandbox inner) : ISandbox
    {
        private readonly Channel<string> _answered = Channel.CreateUnbounded<string>();

        public string Kind => inner.Kind;

        public int Unread => _answered.Reader.Count;

        public async Task<SandboxExit> RunAsync(SandboxSpec spec, Func<string, ValueTask> onStdoutLine, Action<string>? onStarted, CancellationToken cancellationToken)
        {
            var exit = await inner.RunAsync(spec, onStdoutLine, onStarted, cancellationToken);
            _answered.Writer.TryWrite(spec.RunId);
            return exit;
        }

        /// <summary>When the next run called the sandbox.</summary>
        public async Task<long> NextAsync(CancellationToken cancellationToken)
        {
            var runId = await _answered.Reader.ReadAsync(cancellationToken).AsTask().WaitAsync(Patience, cancellationToken);
            return inner.TryTake(runId, out var call) ? call.Called : throw new BenchFailure($"run {runId} was not timed by the sandbox");
        }
    }

    /// <summary>A mailbox's INBOX in IDLE, stamping each mail as the server reports it.</summary>
    private sealed class Inbox : IAsyncDisposable
    {
        private readonly ImapClient _imap;
        private readonly Channel<long> _arrived = Channel.CreateUnbounded<long>();
        private readonly CancellationTokenSource _done = new();
        private Task _idle = Task.CompletedTask;

        private Inbox(ImapClient imap) => _imap = imap;

        public static async Task<Inbox> OpenAsync(MailServer server, MailUser user, TimeProvider time, CancellationToken cancellationToken)
        {
            var inbox = new Inbox(await server.ConnectImapAsync(user, ct: cancellationToken));
            await inbox._imap.Inbox.OpenAsync(FolderAccess.ReadOnly, cancellationToken);
            inbox._imap.Inbox.CountChanged += (_, _) => inbox._arrived.Writer.TryWrite(time.GetTimestamp());
            inbox._idle = inbox._imap.IdleAsync(inbox._done.Token, cancellationToken);
            return inbox;
        }

        public Task<long> NextAsync(CancellationToken cancellationToken) =>
            _arrived.Reader.ReadAsync(cancellationToken).AsTask().WaitAsync(Patience, cancellationToken);

        /// <summary>Ends IDLE and returns how many mails the INBOX holds.</summary>
        public async Task<int> CloseAsync(CancellationToken cancellationToken)
        {
            await _done.CancelAsync();
            await _idle;
            await _imap.NoOpAsync(cancellationToken);
            return _imap.Inbox.Count;
        }

        public async ValueTask DisposeAsync()
        {
            await _done.CancelAsync();
            try
            {
                await _idle;
            }
            catch (Exception error) when (error is OperationCanceledException or IOException or ImapProtocolException)
            {
            }
            _imap.Dispose();
            _done.Dispose();
        }
    }
}
