namespace Loop.Discord.Tests;

using System.Text.Json.Nodes;
using Loop.Runtime;

/// <summary>Discord threads as forked sessions: a thread started in a channel that talks to Loop gets a
/// Loop channel whose first run resumes the channel's session with --fork-session.</summary>
public sealed class ThreadTests : IAsyncLifetime
{
    private const string General = DiscordDouble.GeneralChannel;
    private DiscordDouble _discord = null!;
    private BotHarness _bot = null!;
    private GatewayConnection _gateway = null!;

    public async Task InitializeAsync()
    {
        _discord = await DiscordDouble.StartAsync();
        _bot = await BotHarness.StartAsync(_discord);
        _gateway = await _discord.WaitForReadyAsync();
    }

    public async Task DisposeAsync()
    {
        await _bot.DisposeAsync();
        await _discord.DisposeAsync();
    }

    private ChannelService Channels => _bot.Node.Get<ChannelService>();

    [Fact]
    public async Task A_thread_started_in_a_channel_forks_its_session_on_the_first_run_and_leaves_the_channels_session_alone()
    {
        await _gateway.DispatchAsync("MESSAGE_CREATE", _discord.MessageCreate(General, $"<@{DiscordDouble.BotId}> plan the release", mentionsBot: true));
        await _discord.WaitForMessagesAsync(General, 1);
        var parent = (await Channels.FindChatChannelAsync("discord", General, CancellationToken.None))!;
        var parentSession = $"session-{parent.Id}";
        Assert.Equal(parentSession, (await Channels.GetChannelAsync(Caller.User, parent.Id, CancellationToken.None)).SessionId);

        var thread = _discord.ThreadCreate(General, "try-the-risky-way");
        var threadId = (string)thread["id"]!;
        await _gateway.DispatchAsync("THREAD_CREATE", thread);
        await Eventually.WaitAsync(async () => await Channels.FindChatChannelAsync("discord", threadId, CancellationToken.None) is not null, "the thread's channel");
        var fork = (await Channels.FindChatChannelAsync("discord", threadId, CancellationToken.None))!;
        Assert.Equal(("try-the-risky-way", parent.Id, parentSession), (fork.Name, fork.Fork?.ParentId, fork.Fork?.SessionId));

        await _gateway.DispatchAsync("MESSAGE_CREATE", _discord.MessageCreate(threadId, $"<@{DiscordDouble.BotId}> what if we skip the tests?", mentionsBot: true));
        await _discord.WaitForMessagesAsync(threadId, 1);
        await _gateway.DispatchAsync("MESSAGE_CREATE", _discord.MessageCreate(threadId, $"<@{DiscordDouble.BotId}> and then?", mentionsBot: true));
        await _discord.WaitForMessagesAsync(threadId, 2);

        var commands = _bot.Sandbox.Commands.Where(c => c.ChannelId == fork.Id).Select(c => c.Command).ToList();
        Assert.Equal(2, commands.Count);
        Assert.Equal(["--resume", parentSession, "--fork-session"], After(commands[0], "--resume", 3));
        Assert.Equal(["--resume", $"session-{fork.Id}"], After(commands[1], "--resume", 2));
        Assert.DoesNotContain("--fork-session", commands[1]);
        Assert.Equal(parentSession, (await Channels.GetChannelAsync(Caller.User, parent.Id, CancellationToken.None)).SessionId);
        Assert.Equal($"session-{fork.Id}", (await Channels.GetChannelAsync(Caller.User, fork.Id, CancellationToken.None)).SessionId);
        Assert.DoesNotContain(_bot.Sandbox.Commands, c => c.ChannelId == parent.Id && c.Command.Contains("--fork-session"));
    }

    [Fact]
    public async Task A_thread_in_a_channel_loop_never_talked_in_is_a_channel_of_its_own()
    {
        var thread = _discord.ThreadCreate(General, "unrelated");
        await _gateway.DispatchAsync("THREAD_CREATE", thread);
        await _gateway.DispatchAsync("MESSAGE_CREATE", _discord.MessageCreate((string)thread["id"]!, $"<@{DiscordDouble.BotId}> hello", mentionsBot: true));
        await _discord.WaitForMessagesAsync((string)thread["id"]!, 1);

        var channel = (await Channels.FindChatChannelAsync("discord", (string)thread["id"]!, CancellationToken.None))!;
        Assert.Null(channel.Fork);
        Assert.DoesNotContain("--resume", Assert.Single(_bot.Sandbox.Commands).Command);
    }

    [Fact]
    public async Task Loop_fork_starts_a_thread_that_is_a_fork_of_the_channel()
    {
        await _gateway.DispatchAsync("MESSAGE_CREATE", _discord.MessageCreate(General, $"<@{DiscordDouble.BotId}> hello", mentionsBot: true));
        await _discord.WaitForMessagesAsync(General, 1);
        var parent = (await Channels.FindChatChannelAsync("discord", General, CancellationToken.None))!;

        var interaction = _discord.Interaction(General, new JsonArray(new JsonObject
        {
            ["name"] = "fork",
            ["type"] = 1,
            ["options"] = new JsonArray(new JsonObject { ["name"] = "name", ["type"] = 3, ["value"] = "explore-b" }),
        }));
        await _gateway.DispatchAsync("INTERACTION_CREATE", interaction);
        var original = $"webhooks/{DiscordDouble.AppId}/{(string)interaction["token"]!}/messages/@original";
        await Eventually.WaitAsync(() => _discord.Calls.Any(c => c.Path == original), "the answer to /loop fork");

        var start = Assert.Single(_discord.Calls, c => c.Method == "POST" && c.Path == $"channels/{General}/threads");
        Assert.Equal(("explore-b", 11), ((string)start.Body!["name"]!, (int)start.Body["type"]!));
        var answer = (string)_discord.Calls.Single(c => c.Path == original).Body!["content"]!;
        var threadId = System.Text.RegularExpressions.Regex.Match(answer, @"<#(\d+)>").Groups[1].Value;
        Assert.StartsWith($"Forked this conversation into <#{threadId}>", answer);
        var fork = (await Channels.FindChatChannelAsync("discord", threadId, CancellationToken.None))!;
        Assert.Equal((parent.Id, $"session-{parent.Id}"), (fork.Fork?.ParentId, fork.Fork?.SessionId));
        // The THREAD_CREATE Discord sends for the new thread finds the same channel: a message there goes to the fork.
        await _gateway.DispatchAsync("MESSAGE_CREATE", _discord.MessageCreate(threadId, $"<@{DiscordDouble.BotId}> go on", mentionsBot: true));
        await _discord.WaitForMessagesAsync(threadId, 1);
        Assert.Contains(_bot.Sandbox.Commands, c => c.ChannelId == fork.Id && c.Command.Contains("--fork-session"));
        Assert.Single((await Channels.ListChannelOverviewsAsync(Caller.User, null, null, 0, CancellationToken.None)).Channels, c => c.Channel.Fork is not null);
    }

    private static string[] After(IReadOnlyList<string> command, string option, int count)
    {
        var at = command.ToList().IndexOf(option);
        Assert.True(at >= 0, $"{option} not in: {string.Join(' ', command)}");
        return command.Skip(at).Take(count).ToArray();
    }
}
