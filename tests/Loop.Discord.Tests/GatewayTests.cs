namespace Loop.Discord.Tests;

/// <summary>The gateway connection as Discord's documentation describes it.</summary>
public sealed class GatewayTests
{
    [Fact]
    public async Task Connects_identifies_with_token_and_intents_and_registers_the_commands_globally()
    {
        await using var discord = await DiscordDouble.StartAsync();
        await using var bot = await BotHarness.StartAsync(discord);

        var connection = await discord.WaitForReadyAsync();
        Assert.Equal("/gateway?v=10&encoding=json", connection.Path);
        var identify = connection.ReceivedOp(2).Single()["d"]!;
        Assert.Equal(DiscordDouble.Token, (string)identify["token"]!);
        // guilds, guild messages, direct messages, message content
        Assert.Equal((1 << 0) | (1 << 9) | (1 << 12) | (1 << 15), (int)identify["intents"]!);
        Assert.Equal("loop", (string)identify["properties"]!["browser"]!);

        await Eventually.WaitAsync(() => bot.Adapter.Status.StartsWith("connected", StringComparison.Ordinal), "connected status");
        Assert.Equal("connected as loop", bot.Adapter.Status);
        var chat = bot.Node.Health().Chats.Single();
        Assert.Equal(("discord", "connected as loop"), (chat.Platform, chat.Status));

        await Eventually.WaitAsync(() => discord.Calls.Any(c => c.Method == "PUT"), "command registration");
        var registration = discord.Calls.Single(c => c.Method == "PUT");
        Assert.Equal($"applications/{DiscordDouble.AppId}/commands", registration.Path);
        Assert.Equal("Bot " + DiscordDouble.Token, registration.Authorization);
        var loop = registration.Body!.AsArray().Single()!;
        Assert.Equal("loop", (string)loop["name"]!);
        var subcommands = loop["options"]!.AsArray().Select(o => (string)o!["name"]!).ToList();
        Assert.Equal(["schedule", "tasks", "cancel", "toggle", "edit", "status", "fork", "budget", "template"], subcommands);
        var template = loop["options"]!.AsArray().Single(o => (string)o!["name"]! == "template")!;
        Assert.Equal(2, (int)template["type"]!);
        Assert.True((bool)template["options"]![0]!["options"]![0]!["autocomplete"]!);
    }

    [Fact]
    public async Task Commands_are_registered_in_the_guild_when_discord_guild_id_is_set()
    {
        await using var discord = await DiscordDouble.StartAsync();
        await using var bot = await BotHarness.StartAsync(discord, c => c with { DiscordGuildId = DiscordDouble.GuildId });

        await Eventually.WaitAsync(() => discord.Calls.Any(c => c.Method == "PUT"), "command registration");
        Assert.Equal($"applications/{DiscordDouble.AppId}/guilds/{DiscordDouble.GuildId}/commands", discord.Calls.Single(c => c.Method == "PUT").Path);
    }

    [Fact]
    public async Task Heartbeats_carry_the_sequence_and_a_missing_ack_reconnects_and_resumes()
    {
        await using var discord = await DiscordDouble.StartAsync();
        discord.HeartbeatIntervalMs = 300;
        await using var bot = await BotHarness.StartAsync(discord);
        var first = await discord.WaitForReadyAsync();

        // READY and GUILD_CREATE were sequence 1 and 2: heartbeats report the last one seen (a heartbeat
        // may go out before the bot has read GUILD_CREATE, so wait for one that has).
        await Eventually.WaitAsync(() => first.ReceivedOp(1).Count >= 3 && (long?)first.ReceivedOp(1).Last()["d"] == 2, "three heartbeats, the last at sequence 2");

        discord.AckHeartbeats = false;
        var second = await discord.WaitForConnectionAsync(1);
        discord.AckHeartbeats = true;
        await Eventually.WaitAsync(() => second.ResumedSent, "RESUMED");

        // The bot gave up on the first connection; the double notices when its end of it closes.
        await Eventually.WaitAsync(() => first.Ended, "the first connection ended");
        Assert.StartsWith("/resume-gateway?v=10", second.Path); // resume_gateway_url from READY
        var resume = second.ReceivedOp(6).Single()["d"]!;
        Assert.Equal(first.SessionId, (string)resume["session_id"]!);
        Assert.Equal(2, (long)resume["seq"]!);
        Assert.Equal(DiscordDouble.Token, (string)resume["token"]!);
        Assert.Empty(second.ReceivedOp(2));
        await Eventually.WaitAsync(() => bot.Adapter.Status == "connected (resumed)", "resumed status");
    }

    [Theory]
    [InlineData("network drop")]
    [InlineData("close 4000")]
    public async Task After_a_drop_the_bot_resumes_and_keeps_answering(string how)
    {
        await using var discord = await DiscordDouble.StartAsync();
        await using var bot = await BotHarness.StartAsync(discord);
        var first = await discord.WaitForReadyAsync();
        await first.DispatchAsync("MESSAGE_CREATE", discord.MessageCreate(DiscordDouble.GeneralChannel, "!loop before the drop"));
        await discord.WaitForMessagesAsync(DiscordDouble.GeneralChannel, 1);

        if (how == "network drop")
        {
            first.Abort();
        }
        else
        {
            await first.CloseAsync(4000, "Unknown error.");
        }
        var second = await discord.WaitForConnectionAsync(1);
        await Eventually.WaitAsync(() => second.ResumedSent, "RESUMED");
        Assert.Equal(3, (long)second.ReceivedOp(6).Single()["d"]!["seq"]!);

        await second.DispatchAsync("MESSAGE_CREATE", discord.MessageCreate(DiscordDouble.GeneralChannel, "!loop after the drop"));
        var replies = await discord.WaitForMessagesAsync(DiscordDouble.GeneralChannel, 2);
        Assert.Contains("after the drop", (string)replies[1]["content"]!);
    }

    [Fact]
    public async Task An_invalid_session_leads_to_a_fresh_identify()
    {
        await using var discord = await DiscordDouble.StartAsync();
        await using var bot = await BotHarness.StartAsync(discord);
        var first = await discord.WaitForReadyAsync();
        // READY sent is not READY handled: until the bot has its session it has nothing to
        // resume, and a drop then leads to a plain IDENTIFY, not the RESUME this test is about.
        await Eventually.WaitAsync(() => bot.Adapter.Status == "connected as loop", "READY handled");

        discord.InvalidateSessions();
        first.Abort();
        var second = await discord.WaitForConnectionAsync(1);
        // Reconnecting waits a backoff first; give it room on a busy machine.
        await Eventually.WaitAsync(() => second.InvalidSessionSent, "INVALID_SESSION", TimeSpan.FromSeconds(45));
        var third = await discord.WaitForReadyAsync(2);

        Assert.Single(second.ReceivedOp(6));
        Assert.Equal("/gateway?v=10&encoding=json", third.Path);
        Assert.Single(third.ReceivedOp(2));
        Assert.Empty(third.ReceivedOp(6));
        Assert.NotEqual(first.SessionId, third.SessionId);
        await Eventually.WaitAsync(() => bot.Adapter.Status == "connected as loop", "connected again");
    }

    [Theory]
    [InlineData(4014, "disallowed intents (4014): enable the MESSAGE CONTENT privileged intent")]
    [InlineData(4004, "authentication failed (4004)")]
    public async Task A_close_code_that_retrying_cannot_fix_stops_with_a_clear_status(int code, string expected)
    {
        await using var discord = await DiscordDouble.StartAsync();
        discord.CloseOnIdentify = code;
        await using var bot = await BotHarness.StartAsync(discord);

        await Eventually.WaitAsync(() => bot.Adapter.Status.StartsWith("failed", StringComparison.Ordinal), "failed status");
        Assert.StartsWith("failed: " + expected, bot.Adapter.Status);
        var health = bot.Node.Health();
        Assert.StartsWith("failed: " + expected, health.Chats.Single().Status);
        Assert.Equal("degraded", health.Status);
        Assert.Contains(health.Warnings, w => w.StartsWith("connector discord is not connected: failed: " + expected, StringComparison.Ordinal));
        await Task.Delay(1000);
        Assert.Single(discord.Connections); // no retry
    }

    [Fact]
    public async Task A_close_code_that_allows_it_reconnects_with_a_new_session_when_the_old_one_timed_out()
    {
        await using var discord = await DiscordDouble.StartAsync();
        await using var bot = await BotHarness.StartAsync(discord);
        var first = await discord.WaitForReadyAsync();

        await first.CloseAsync(4009, "Session timed out.");
        var second = await discord.WaitForReadyAsync(1);

        Assert.Single(second.ReceivedOp(2));
        Assert.Empty(second.ReceivedOp(6));
    }
}
