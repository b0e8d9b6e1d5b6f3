namespace Loop.Discord.Tests;

using System.Text;
using System.Text.Json.Nodes;
using Loop.Domain.Channels;
using Loop.Runtime;

/// <summary>What people see in Discord when they talk to the bot.</summary>
public sealed class MessageTests
{
    private const string General = DiscordDouble.GeneralChannel;

    [Fact]
    public async Task A_mention_becomes_a_channel_message_and_the_long_reply_is_posted_split_referenced_after_typing()
    {
        await using var discord = await DiscordDouble.StartAsync();
        var release = new TaskCompletionSource();
        await using var bot = await BotHarness.StartAsync(discord, timings: new DiscordTimings(TypingRefresh: TimeSpan.FromMilliseconds(200)));
        var longReply = LongReplyWithCode();
        bot.Sandbox.Script = _ => new AgentScript(longReply, HoldUntil: release.Task);
        var gateway = await discord.WaitForReadyAsync();

        var mention = discord.MessageCreate(General, $"<@{DiscordDouble.BotId}> write me the long answer", mentionsBot: true);
        await gateway.DispatchAsync("MESSAGE_CREATE", mention);

        // The agent is working: the channel shows the bot typing, refreshed while the run lasts. (Typing
        // starts when the run is queued, so the agent may not have the prompt yet: wait for both.)
        await Eventually.WaitAsync(() => discord.Calls.Count(c => c.Path == $"channels/{General}/typing") >= 2 && !bot.Sandbox.Prompts.IsEmpty,
            "typing refreshed while the agent works");
        var channel = await bot.Node.Channels.FindChatChannelAsync("discord", General, CancellationToken.None);
        Assert.NotNull(channel);
        Assert.Equal("general", channel.Name);
        var stored = (await bot.Node.Channels.ListMessagesAsync(Caller.User, channel.Id, 0, 10, CancellationToken.None)).Single();
        Assert.Equal(("Alice", "write me the long answer", (string?)mention["id"]), (stored.Author, stored.Content, stored.ExternalId));
        Assert.Equal(["Alice: write me the long answer"], bot.Sandbox.Prompts);

        release.SetResult();
        await Eventually.WaitAsync(() => bot.Node.Health().Queue.Running == 0 && discord.MessagesIn(General).Count >= 3, "the reply");
        await Task.Delay(300);
        var parts = discord.MessagesIn(General);
        var typingCalls = discord.Calls.Where(c => c.Path == $"channels/{General}/typing").ToList();
        var firstPart = discord.Calls.First(c => c.Path == $"channels/{General}/messages");
        Assert.All(typingCalls, t => Assert.True(t.At <= firstPart.At, "no typing after the reply"));

        Assert.InRange(parts.Count, 3, 4);
        Assert.All(parts, p => Assert.InRange(((string)p["content"]!).Length, 1, 2000));
        Assert.Equal((string?)mention["id"], (string?)parts[0]["message_reference"]!["message_id"]);
        Assert.All(parts.Skip(1), p => Assert.Null(p["message_reference"]));
        Assert.Empty(parts[0]["allowed_mentions"]!["parse"]!.AsArray());
        // Every part renders its code: fences come in pairs, and a split block is reopened with its language.
        Assert.All(parts, p => Assert.Equal(0, Fences((string)p["content"]!) % 2));
        Assert.Contains(parts.Skip(1), p => ((string)p["content"]!).StartsWith("```csharp\n", StringComparison.Ordinal));
        var joined = string.Join("\n", parts.Select(p => (string)p["content"]!));
        for (var i = 0; i < 100; i++)
        {
            Assert.Contains($"Console.WriteLine(\"line {i}\");", joined);
        }
        Assert.Contains("The end.", (string)parts[^1]["content"]!);
    }

    [Fact]
    public async Task A_message_that_comes_before_the_guilds_channel_list_gets_its_channel_named_once_the_list_arrives()
    {
        await using var discord = await DiscordDouble.StartAsync();
        discord.SendGuildAfterReady = false;
        await using var bot = await BotHarness.StartAsync(discord);
        var gateway = await discord.WaitForReadyAsync();
        async Task<string?> NameAsync() => (await bot.Node.Channels.FindChatChannelAsync("discord", General, CancellationToken.None))?.Name;

        await gateway.DispatchAsync("MESSAGE_CREATE", discord.MessageCreate(General, "!loop who is there"));
        await discord.WaitForMessagesAsync(General, 1);
        Assert.Equal($"discord-{General}", await NameAsync()); // the channel list has not come yet

        await gateway.DispatchAsync("GUILD_CREATE", discord.GuildCreate());
        await Eventually.WaitAsync(async () => await NameAsync() == "general", "the channel named after #general");

        // A Discord channel renamed later is followed too; it stays the same Loop channel with its conversation.
        var general = discord.GuildChannels.Single(c => (string?)c["id"] == General);
        general["name"] = "general-chat";
        await gateway.DispatchAsync("CHANNEL_UPDATE", general);
        await Eventually.WaitAsync(async () => await NameAsync() == "general-chat", "the channel renamed after #general-chat");
        var channel = (await bot.Node.Channels.FindChatChannelAsync("discord", General, CancellationToken.None))!;
        Assert.Single(await bot.Node.Channels.ListMessagesAsync(Caller.User, channel.Id, 0, 10, CancellationToken.None), m => m.Role == MessageRole.User);
    }

    [Fact]
    public async Task Replies_to_the_bot_the_prefix_and_dms_are_answered_while_others_and_bots_are_ignored()
    {
        await using var discord = await DiscordDouble.StartAsync();
        await using var bot = await BotHarness.StartAsync(discord);
        var gateway = await discord.WaitForReadyAsync();
        const string dm = "800000000000000008";

        await gateway.DispatchAsync("MESSAGE_CREATE", discord.MessageCreate(General, "just chatting with friends"));
        await gateway.DispatchAsync("MESSAGE_CREATE", discord.MessageCreate(General, $"<@{DiscordDouble.BotId}> from another bot", DiscordDouble.OtherBotId, "otherbot", bot: true, mentionsBot: true));
        await gateway.DispatchAsync("MESSAGE_CREATE", discord.MessageCreate(General, "!loop my own echo", DiscordDouble.BotId, "loop", bot: true));

        await gateway.DispatchAsync("MESSAGE_CREATE", discord.MessageCreate(General, "!loop what is the time"));
        var first = await discord.WaitForMessagesAsync(General, 1);
        await gateway.DispatchAsync("MESSAGE_CREATE", discord.MessageCreate(General, "and tomorrow?", replyToBotMessage: discord.NewSnowflake()));
        await discord.WaitForMessagesAsync(General, 2);
        await gateway.DispatchAsync("MESSAGE_CREATE", discord.MessageCreate(dm, "hello in private", inGuild: false));
        var direct = await discord.WaitForMessagesAsync(dm, 1);

        Assert.Equal(["Alice: what is the time", "Alice: and tomorrow?", "Alice: hello in private"], bot.Sandbox.Prompts);
        Assert.Equal("echo: Alice: what is the time", (string)first[0]["content"]!);
        Assert.Equal("echo: Alice: hello in private", (string)direct[0]["content"]!);
        var dmChannel = await bot.Node.Channels.FindChatChannelAsync("discord", dm, CancellationToken.None);
        Assert.Equal("dm-alice", dmChannel!.Name);
        var general = await bot.Node.Channels.FindChatChannelAsync("discord", General, CancellationToken.None);
        var stored = await bot.Node.Channels.ListMessagesAsync(Caller.User, general!.Id, 0, 100, CancellationToken.None);
        Assert.Equal(2, stored.Count(m => m.Role == MessageRole.User));
    }

    [Fact]
    public async Task A_failed_run_and_a_timeout_get_a_short_human_reply()
    {
        await using var discord = await DiscordDouble.StartAsync();
        await using var bot = await BotHarness.StartAsync(discord);
        bot.Sandbox.Script = prompt => prompt.Contains("crash") ? new AgentScript(null, ExitCode: 1) : new AgentScript(null, TimedOut: true);
        var gateway = await discord.WaitForReadyAsync();

        var crash = discord.MessageCreate(General, "!loop crash please");
        await gateway.DispatchAsync("MESSAGE_CREATE", crash);
        var replies = await discord.WaitForMessagesAsync(General, 1);
        var slow = discord.MessageCreate(General, "!loop take forever");
        await gateway.DispatchAsync("MESSAGE_CREATE", slow);
        replies = await discord.WaitForMessagesAsync(General, 2);

        Assert.StartsWith("The agent run failed:", (string)replies[0]["content"]!);
        Assert.Equal((string?)crash["id"], (string?)replies[0]["message_reference"]!["message_id"]);
        Assert.StartsWith("The agent ran out of time and was stopped.", (string)replies[1]["content"]!);
        Assert.Equal((string?)slow["id"], (string?)replies[1]["message_reference"]!["message_id"]);
    }

    [Fact]
    public async Task Scheduled_task_output_is_posted_to_the_tasks_channel_without_a_reference()
    {
        await using var discord = await DiscordDouble.StartAsync();
        await using var bot = await BotHarness.StartAsync(discord);
        var gateway = await discord.WaitForReadyAsync();
        await gateway.DispatchAsync("MESSAGE_CREATE", discord.MessageCreate(General, "!loop hello"));
        await discord.WaitForMessagesAsync(General, 1);
        var channel = await bot.Node.Channels.FindChatChannelAsync("discord", General, CancellationToken.None);
        bot.Sandbox.Script = prompt => new AgentScript(prompt.Contains("standup") ? "3 commits today" : "?");

        await bot.Node.Tasks.CreateAsync(Caller.User, new NewTaskRequest(channel!.Id, "once", "1s", "Write the standup notes", Name: "standup"), CancellationToken.None);
        var messages = await discord.WaitForMessagesAsync(General, 2);

        Assert.Equal("**⏰ standup**\n3 commits today", (string)messages[1]["content"]!);
        Assert.Null(messages[1]["message_reference"]);
    }

    [Fact]
    public async Task Replies_in_one_channel_keep_their_order_under_the_rate_limit()
    {
        await using var discord = await DiscordDouble.StartAsync();
        discord.MessageLimit = 2;
        await using var bot = await BotHarness.StartAsync(discord);
        var gateway = await discord.WaitForReadyAsync();
        bot.Sandbox.Script = prompt => new AgentScript(string.Join("\n\n", Enumerable.Range(0, 5).Select(i => $"{prompt} part {i} " + new string('x', 1500))));

        await gateway.DispatchAsync("MESSAGE_CREATE", discord.MessageCreate(General, "!loop go"));
        var parts = await discord.WaitForMessagesAsync(General, 5);

        Assert.Equal(5, parts.Count);
        for (var i = 0; i < 5; i++)
        {
            Assert.StartsWith($"Alice: go part {i} ", (string)parts[i]["content"]!);
        }
        Assert.DoesNotContain(discord.Calls, c => c.Status == 429);
    }

    private static int Fences(string text) => text.Split('\n').Count(l => l.TrimStart().StartsWith("```", StringComparison.Ordinal));

    private static string LongReplyWithCode()
    {
        var text = new StringBuilder();
        text.Append("Here is the plan.\n\n");
        for (var i = 0; i < 8; i++)
        {
            text.Append($"Paragraph {i}: ").Append(string.Join(' ', Enumerable.Repeat("words to fill the paragraph", 8))).Append("\n\n");
        }
        text.Append("```csharp\n");
        for (var i = 0; i < 100; i++)
        {
            text.Append($"Console.WriteLine(\"line {i}\");\n");
        }
        text.Append("```\n\nThe end.");
        return text.ToString();
    }
}
