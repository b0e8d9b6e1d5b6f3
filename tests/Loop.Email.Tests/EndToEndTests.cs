namespace Loop.Email.Tests;

using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Loop.Testing;
using MimeKit;

/// <summary>
/// The whole path as a user meets it: a real <c>loop serve</c> whose config.json names a mailbox
/// (the email_* keys), real IMAP and SMTP servers, and each run in a real container (the agent test
/// image with the <c>claude</c> test double).
/// </summary>
public sealed partial class EndToEndTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    private static JsonObject Config(MailServer server, MailUser loop, MailUser alice) => new()
    {
        ["email_imap"] = $"{MailServer.Host}:{server.ImapPort}",
        ["email_smtp"] = $"{MailServer.Host}:{server.SmtpPort}",
        ["email_username"] = loop.Address,
        ["email_password"] = loop.Password,
        ["email_tls"] = "none",
        ["email_address"] = loop.Address,
        ["email_allowed_senders"] = new JsonArray(alice.Address),
    };

    [Fact]
    public async Task A_mail_is_answered_from_a_container_in_its_thread_and_an_answer_to_the_reply_joins_the_same_channel()
    {
        var server = await MailServer.SharedAsync();
        var loop = await server.AddUserAsync(MailAssert.Unique("loop"));
        var alice = await server.AddUserAsync(MailAssert.Unique("alice"));
        await using var daemon = await LoopDaemon.StartAsync(Config(server, loop, alice));

        var sent = await server.SendAsync(alice, loop.Address, "Container check", "[[reply hello from the container]]");
        var reply = await ReplyAsync(server, alice, 1, daemon);

        Assert.Contains("hello from the container", reply.TextBody);
        Assert.Equal("Re: Container check", reply.Subject);
        Assert.Equal(sent.MessageId, reply.InReplyTo);
        Assert.Equal([sent.MessageId!], reply.References);
        Assert.Equal(loop.Address, Assert.Single(reply.From.Mailboxes).Address);
        Assert.Equal(alice.Address, Assert.Single(reply.To.Mailboxes).Address);

        var answer = new MimeMessage { Subject = reply.Subject!, InReplyTo = reply.MessageId!, Body = new TextPart("plain") { Text = "[[reply second answer]]" } };
        answer.References.AddRange(reply.References);
        answer.References.Add(reply.MessageId!);
        answer.From.Add(MailboxAddress.Parse(alice.Address));
        answer.To.Add(MailboxAddress.Parse(loop.Address));
        await server.SendAsync(alice, answer);
        var second = await ReplyAsync(server, alice, 2, daemon);
        Assert.Contains("second answer", second.TextBody);
        Assert.Equal(answer.MessageId, second.InReplyTo);

        var channel = Assert.Single(JsonNode.Parse(await daemon.Http.GetStringAsync("/api/channels"))!.AsArray())!;
        Assert.Equal("Container check", (string?)channel["name"]);
        var runs = JsonNode.Parse(await daemon.Http.GetStringAsync($"/api/channels/{channel["id"]}/runs"))!.AsArray();
        Assert.Equal(2, runs.Count);
        Assert.All(runs, run => Assert.Equal("succeeded", (string?)run!["status"]));
        Assert.All((await MailAssert.SeenAsync(server, loop)).Values, Assert.True);
        var health = JsonNode.Parse(await daemon.Http.GetStringAsync("/api/health"))!;
        Assert.Contains(health["chats"]!.AsArray(), c => (string?)c!["platform"] == "email" && ((string?)c["status"])!.StartsWith("connected", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_kill_during_the_run_loses_nothing_and_answers_once()
    {
        var server = await MailServer.SharedAsync();
        var loop = await server.AddUserAsync(MailAssert.Unique("loop"));
        var alice = await server.AddUserAsync(MailAssert.Unique("alice"));
        await using var daemon = await LoopDaemon.StartAsync(Config(server, loop, alice));

        var sent = await server.SendAsync(alice, loop.Address, "Slow one", "[[sleep 5]] [[reply after the crash]]");
        var channelId = await WaitForAsync(daemon, async () =>
        {
            var channels = JsonNode.Parse(await daemon.Http.GetStringAsync("/api/channels"))!.AsArray();
            return channels.FirstOrDefault(c => c?["active_run_id"] is not null)?["id"]?.ToString();
        }, "a running run");
        await daemon.KillAsync();
        await daemon.RestartAsync();

        var reply = await ReplyAsync(server, alice, 1, daemon);
        Assert.Contains("after the crash", reply.TextBody);
        Assert.Equal(sent.MessageId, reply.InReplyTo);
        var runs = JsonNode.Parse(await daemon.Http.GetStringAsync($"/api/channels/{channelId}/runs"))!.AsArray();
        Assert.Equal(["failed", "succeeded"], runs.Select(r => (string?)r!["status"]).Order());
        var messages = JsonNode.Parse(await daemon.Http.GetStringAsync($"/api/channels/{channelId}/messages"))!.AsArray();
        Assert.Single(messages, m => (string?)m!["role"] == "user");
        Assert.Single(SentReplies().Matches(daemon.Output));
        Assert.Single(await server.MessagesAsync(alice));
    }

    [Fact]
    public async Task A_kill_after_the_run_before_its_reply_went_out_sends_the_reply_once_after_the_restart()
    {
        var server = await MailServer.SharedAsync();
        var loop = await server.AddUserAsync(MailAssert.Unique("loop"));
        var alice = await server.AddUserAsync(MailAssert.Unique("alice"));
        await using var smtp = TcpRelay.Start(MailServer.Host, server.SmtpPort);
        var config = Config(server, loop, alice);
        config["email_smtp"] = $"{MailServer.Host}:{smtp.Port}";
        await using var daemon = await LoopDaemon.StartAsync(config);

        // The run ends and its reply is on its way when the daemon dies.
        var replying = smtp.StallNext();
        var sent = await server.SendAsync(alice, loop.Address, "Crash before the reply", "[[reply sent after the crash]]");
        await replying.WaitAsync(Patience);
        await daemon.KillAsync();
        await daemon.RestartAsync();

        var reply = await ReplyAsync(server, alice, 1, daemon);
        Assert.Contains("sent after the crash", reply.TextBody);
        Assert.Equal(sent.MessageId, reply.InReplyTo);
        // The next answer in the thread comes after it: the recovered one was sent once.
        var answer = new MimeMessage { Subject = reply.Subject!, InReplyTo = reply.MessageId!, Body = new TextPart("plain") { Text = "[[reply the next one]]" } };
        answer.References.Add(sent.MessageId!);
        answer.References.Add(reply.MessageId!);
        answer.From.Add(MailboxAddress.Parse(alice.Address));
        answer.To.Add(MailboxAddress.Parse(loop.Address));
        await server.SendAsync(alice, answer);
        await ReplyAsync(server, alice, 2, daemon);
        Assert.Equal(["sent after the crash", "the next one"], (await server.MessagesAsync(alice)).Select(m => m.TextBody?.Trim()));
    }

    private static async Task<MimeMessage> ReplyAsync(MailServer server, MailUser user, int count, LoopDaemon daemon)
    {
        try
        {
            return (await server.WaitForMessagesAsync(user, count, Patience))[count - 1];
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"reply {count} did not arrive; loop serve said:\n{daemon.Output}");
        }
    }

    private static async Task<string> WaitForAsync(LoopDaemon daemon, Func<Task<string?>> probe, string what)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (true)
        {
            if (await probe() is { } found)
            {
                return found;
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"no {what}; loop serve said:\n{daemon.Output}");
            }
            await Task.Delay(50);
        }
    }

    [GeneratedRegex("Sent the reply of run")]
    private static partial Regex SentReplies();
}
