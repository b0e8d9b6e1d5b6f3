namespace Loop.WhatsApp.Tests;

using System.Net;
using System.Text.Json.Nodes;
using Loop.Testing;

/// <summary>
/// A real <c>loop serve</c> with a WhatsApp connector from its config file, the Cloud API double, and
/// agent runs in real containers (the agent test image with the claude double): Meta's handshake, a
/// signed message answered as a reply, forged and foreign messages refused, a repeat answered once.
/// </summary>
public sealed class WebhookTests
{
    private const string Alice = "15551234567";
    private const string Stranger = "447700900123";

    [Fact]
    public async Task A_signed_message_from_an_allowed_number_is_answered_as_a_reply_and_a_repeat_of_it_once()
    {
        await using var whatsapp = await WhatsAppDouble.StartAsync();
        await using var loop = await StartLoopAsync(whatsapp);
        var webhook = loop.ApiUrl + "/hooks/whatsapp";

        // Meta's handshake when the webhook is set up.
        Assert.Equal("1158201444", await loop.Http.GetStringAsync(
            $"/hooks/whatsapp?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token={WhatsAppDouble.VerifyToken}"));
        using (var wrong = await loop.Http.GetAsync("/hooks/whatsapp?hub.mode=subscribe&hub.challenge=1&hub.verify_token=guess"))
        {
            Assert.Equal(HttpStatusCode.Forbidden, wrong.StatusCode);
        }

        var message = WhatsAppDouble.TextMessage(Alice, "[[reply hello from the container]]", id: "wamid.first");
        using (var stored = await WhatsAppDouble.NotifyAsync(webhook, message))
        {
            Assert.Equal(HttpStatusCode.OK, stored.StatusCode);
        }
        var reply = Assert.Single(await whatsapp.WaitForSentAsync(1));
        Assert.Equal(new SentMessage(Alice, "hello from the container", "wamid.first"), reply);
        Assert.Contains("wamid.first", whatsapp.Read);

        // Meta delivers again when it did not see the 200 in time: the message is stored and answered once.
        using (var again = await WhatsAppDouble.NotifyAsync(webhook, message))
        {
            Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        }
        using (var next = await WhatsAppDouble.NotifyAsync(webhook, WhatsAppDouble.TextMessage(Alice, "[[reply second]]", id: "wamid.second")))
        {
            Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        }
        var replies = await whatsapp.WaitForSentAsync(2);
        Assert.Equal(["hello from the container", "second"], replies.Select(r => r.Text));
        var channel = (await loop.GetArrayAsync("/api/channels")).Single(c => (string?)c!["platform"] == "whatsapp")!;
        Assert.Equal("Alice", (string)channel["name"]!);
        var messages = await loop.GetArrayAsync($"/api/channels/{channel["id"]}/messages");
        Assert.Equal(["user", "agent", "user", "agent"], messages.Select(m => (string)m!["role"]!));

        var connector = Assert.Single(await loop.GetArrayAsync("/api/connectors"))!;
        Assert.Equal("connected", (string)connector["status"]!["state"]!);
    }

    [Fact]
    public async Task A_forged_call_is_refused_and_a_stranger_is_told_once_why_without_an_agent_run_even_across_a_restart()
    {
        await using var whatsapp = await WhatsAppDouble.StartAsync();
        await using var loop = await StartLoopAsync(whatsapp);
        var webhook = loop.ApiUrl + "/hooks/whatsapp";

        using (var forged = await WhatsAppDouble.NotifyAsync(webhook, WhatsAppDouble.TextMessage(Alice, "[[reply forged]]"), secret: "not the app secret"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, forged.StatusCode);
        }
        for (var i = 0; i < 2; i++)
        {
            using var foreign = await WhatsAppDouble.NotifyAsync(webhook, WhatsAppDouble.TextMessage(Stranger, $"[[reply stranger {i}]]", name: "Mallory"));
            Assert.Equal(HttpStatusCode.OK, foreign.StatusCode);
        }
        // Then Alice, whose answer comes after any the stranger could have caused.
        using (var allowed = await WhatsAppDouble.NotifyAsync(webhook, WhatsAppDouble.TextMessage(Alice, "[[reply for alice]]")))
        {
            Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
        }
        await whatsapp.WaitForSentAsync(2);

        var refusal = Assert.Single(whatsapp.Sent, s => s.To == Stranger);
        Assert.Contains("Ask them to add +447700900123 to the allowed numbers", refusal.Text);
        Assert.Equal("for alice", Assert.Single(whatsapp.Sent, s => s.To == Alice).Text);
        Assert.DoesNotContain(await loop.GetArrayAsync("/api/channels"), c => (string?)c!["name"] == "Mallory");
        Assert.DoesNotContain(whatsapp.Sent, s => s.Text.Contains("forged", StringComparison.Ordinal));

        // The daemon remembers whom it told, across a restart.
        await loop.StopAsync();
        await loop.RestartAsync();
        using (var foreign = await WhatsAppDouble.NotifyAsync(webhook, WhatsAppDouble.TextMessage(Stranger, "[[reply stranger again]]", name: "Mallory")))
        {
            Assert.Equal(HttpStatusCode.OK, foreign.StatusCode);
        }
        using (var allowed = await WhatsAppDouble.NotifyAsync(webhook, WhatsAppDouble.TextMessage(Alice, "[[reply for alice again]]")))
        {
            Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
        }
        await whatsapp.WaitForSentAsync(3);
        Assert.Single(whatsapp.Sent, s => s.To == Stranger);
    }

    [Fact]
    public async Task A_reply_whose_daemon_was_killed_before_it_reached_whatsapp_is_sent_once_after_the_restart()
    {
        await using var whatsapp = await WhatsAppDouble.StartAsync();
        await using var loop = await StartLoopAsync(whatsapp);
        var webhook = loop.ApiUrl + "/hooks/whatsapp";

        // The run ends and its reply is on its way when the daemon dies.
        var replying = whatsapp.StallNextSend();
        using (var stored = await WhatsAppDouble.NotifyAsync(webhook, WhatsAppDouble.TextMessage(Alice, "[[reply sent after the crash]]", id: "wamid.crash")))
        {
            Assert.Equal(HttpStatusCode.OK, stored.StatusCode);
        }
        await replying.WaitAsync(TimeSpan.FromSeconds(120));
        await loop.KillAsync();
        Assert.Empty(whatsapp.Sent);

        await loop.RestartAsync();
        Assert.Equal(new SentMessage(Alice, "sent after the crash", "wamid.crash"), Assert.Single(await whatsapp.WaitForSentAsync(1)));
        // The next answer comes after it: the recovered one was sent once.
        using (var next = await WhatsAppDouble.NotifyAsync(webhook, WhatsAppDouble.TextMessage(Alice, "[[reply the next one]]", id: "wamid.next")))
        {
            Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        }
        Assert.Equal(["sent after the crash", "the next one"], (await whatsapp.WaitForSentAsync(2)).Select(r => r.Text));
    }

    private static Task<LoopDaemon> StartLoopAsync(WhatsAppDouble whatsapp) => LoopDaemon.StartAsync(new JsonObject
    {
        ["whatsapp_phone_number_id"] = WhatsAppDouble.PhoneNumberId,
        ["whatsapp_access_token"] = WhatsAppDouble.AccessToken,
        ["whatsapp_app_secret"] = WhatsAppDouble.AppSecret,
        ["whatsapp_verify_token"] = WhatsAppDouble.VerifyToken,
        ["whatsapp_allowed_numbers"] = new JsonArray("+1 555 123 4567"),
        ["whatsapp_api_url"] = whatsapp.ApiUrl,
    });
}
