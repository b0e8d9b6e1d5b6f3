namespace Loop.Discord.Tests;

using System.Text.Json.Nodes;
using Loop.Runtime;
using Loop.Testing;

/// <summary>Discord threads as forked sessions: a thread started in a channel that talks to Loop gets a
/// Loop channel whose first run resumes the channel's session with --fork-session.</summary>
public sealed class ThreadTests : BotTest
{
    private ChannelService Channels => Bot.Node.Get<ChannelService>();

    [Fact]
    public async Task A_thread_started_in_a_channel_forks_its_session_on_the_first_run_and_leaves_the_channels_session_alone()
    {
        await Gateway.DispatchAsync("MESSAGE_CREATE", Discord.MessageCreate(General, $"<@{DiscordDouble.BotId}> plan the release", mentionsBot: true));
        await Discord.WaitForMessagesAsync(General, 1);
        var parent = (await Channels.FindChatChannelAsync("discord", General, CancellationToken.None))!;
        var parentSession = $"session-{parent.Id}";
        Assert.Equal(parentSession, (await Channels.GetChannelAsync(Caller.User, parent.Id, CancellationToken.None)).SessionId);

        var thread = Discord.ThreadCreate(General, "try-the-risky-way");
        var threadId = (string)thread["id"]!;
        await Gateway.DispatchAsync("THREAD_CREATE", thread);
        await Eventually.WaitAsync(async () => await Channels.FindChatChannelAsync("discord", threadId, CancellationToken.None) is not null, "the thread's channel");
        var fork = (await Channels.FindChatChannelAsync("discord", threadId, CancellationToken.None))!;
        Assert.Equal(("try-the-risky-way", parent.Id, parentSession), (fork.Name, fork.Fork?.ParentId, fork.Fork?.SessionId));

        await Gateway.DispatchAsync("MESSAGE_CREATE", Discord.MessageCreate(threadId, $"<@{DiscordDouble.BotId}> what if we skip the tests?", mentionsBot: true));
        await Discord.WaitForMessagesAsync(threadId, 1);
        await Gateway.DispatchAsync("MESSAGE_CREATE", Discord.MessageCreate(threadId, $"<@{DiscordDouble.BotId}> and then?", mentionsBot: true));
        await Discord.WaitForMessagesAsync(threadId, 2);

        var commands = Bot.Sandbox.Commands.Where(c => c.ChannelId == fork.Id).Select(c => c.Command).ToList();
        Assert.Equal(2, commands.Count);
        Assert.Equal(["--resume", parentSession, "--fork-session"], After(commands[0], "--resume", 3));
        Assert.Equal(["--resume", $"session-{fork.Id}"], After(commands[1], "--resume", 2));
        Assert.DoesNotContain("--fork-session", commands[1]);
        Assert.Equal(parentSession, (await Channels.GetChannelAsync(Caller.User, parent.Id, CancellationToken.None)).SessionId);
        Assert.Equal($"session-{fork.Id}", (await Channels.GetChannelAsync(Caller.User, fork.Id, CancellationToken.None)).SessionId);
        Assert.DoesNotContain(Bot.Sandbox.Commands, c => c.ChannelId == parent.Id && c.Command.Contains("--fork-session"));
    }

    [Fact]
    public async Task A_thread_in_a_channel_loop_never_talked_in_is_a_channel_of_its_own()
    {
        var thread = Discord.ThreadCreate(General, "unrelated");
        await Gateway.DispatchAsync("THREAD_CREATE", thread);
        await Gateway.DispatchAsync("MESSAGE_CREATE", Discord.MessageCreate((string)thread["id"]!, $"<@{DiscordDouble.BotId}> hello", mentionsBot: true));
        await Discord.WaitForMessagesAsync((string)thread["id"]!, 1);

        var channel = (await Channels.FindChatChannelAsync("discord", (string)thread["id"]!, CancellationToken.None))!;
        Assert.Null(channel.Fork);
        Assert.DoesNotContain("--resume", Assert.Single(Bot.Sandbox.Commands).Command);
    }

    [Fact]
    public async Task Loop_fork_starts_a_thread_that_is_a_fork_of_the_channel()
    {
        await Gateway.DispatchAsync("MESSAGE_CREATE", Discord.MessageCreate(General, $"<@{DiscordDouble.BotId}> hello", mentionsBot: true));
        await Discord.WaitForMessagesAsync(General, 1);
        var parent = (await Channels.FindChatChannelAsync("discord", General, CancellationToken.None))!;

        var answer = await AnswerOfAsync(Command("fork", ("name", "explore-b")), "fork");

        var start = Assert.Single(Discord.Calls, c => c.Method == "POST" && c.Path == $"channels/{General}/threads");
        Assert.Equal(("explore-b", 11), ((string)start.Body!["name"]!, (int)start.Body["type"]!));
        var threadId = System.Text.RegularExpressions.Regex.Match(answer, @"<#(\d+)>").Groups[1].Value;
        Assert.StartsWith($"Forked this conversation into <#{threadId}>", answer);
        var fork = (await Channels.FindChatChannelAsync("discord", threadId, CancellationToken.None))!;
        Assert.Equal((parent.Id, $"session-{parent.Id}"), (fork.Fork?.ParentId, fork.Fork?.SessionId));
        // The THREAD_CREATE Discord sends for the new thread finds the same channel: a message there goes to the fork.
        await Gateway.DispatchAsync("MESSAGE_CREATE", Discord.MessageCreate(threadId, $"<@{DiscordDouble.BotId}> go on", mentionsBot: true));
        await Discord.WaitForMessagesAsync(threadId, 1);
        Assert.Contains(Bot.Sandbox.Commands, c => c.ChannelId == fork.Id && c.Command.Contains("--fork-session"));
        Assert.Single((await Channels.ListChannelOverviewsAsync(Caller.User, null, null, 0, CancellationToken.None)).Channels, c => c.Channel.Fork is not null);
    }

    [Fact]
    public async Task Loop_fork_with_a_worktree_needs_a_channel_in_a_git_repository_and_starts_no_thread_otherwise()
    {
        await Gateway.DispatchAsync("MESSAGE_CREATE", Discord.MessageCreate(General, $"<@{DiscordDouble.BotId}> hello", mentionsBot: true));
        await Discord.WaitForMessagesAsync(General, 1);

        var refused = await AnswerOfAsync(ForkWithWorktree(), "fork");
        Assert.StartsWith("❌ channel", refused);
        Assert.Contains("no git repository to make a worktree of", refused);
        Assert.DoesNotContain(Discord.Calls, c => c.Method == "POST" && c.Path == $"channels/{General}/threads");

        // The channel moved to a project in a git repository: now the thread's fork works in a worktree of its own.
        var parent = (await Channels.FindChatChannelAsync("discord", General, CancellationToken.None))!;
        var repo = TestRepository.Create();
        await Channels.UpdateChannelAsync(Caller.User, parent.Id, new ChannelChange(DirPath: repo), CancellationToken.None);
        var answer = await AnswerOfAsync(ForkWithWorktree(), "fork");
        var threadId = System.Text.RegularExpressions.Regex.Match(answer, @"<#(\d+)>").Groups[1].Value;
        var fork = (await Channels.FindChatChannelAsync("discord", threadId, CancellationToken.None))!;
        Assert.Contains($"working in a git worktree of its own on branch `loop/{fork.Id}`", answer);
        Assert.Equal((parent.Id, repo, true), (fork.Fork?.ParentId, fork.Fork?.DirPath, fork.Fork?.WantsWorktree));
    }

    /// <summary>/loop fork worktree:true, the option a boolean as Discord sends it.</summary>
    private JsonObject ForkWithWorktree() =>
        Discord.Interaction(General, new JsonArray(new JsonObject
        {
            ["name"] = "fork",
            ["type"] = 1,
            ["options"] = new JsonArray(new JsonObject { ["name"] = "worktree", ["type"] = 5, ["value"] = true }),
        }));

    private static string[] After(IReadOnlyList<string> command, string option, int count)
    {
        var at = command.ToList().IndexOf(option);
        Assert.True(at >= 0, $"{option} not in: {string.Join(' ', command)}");
        return command.Skip(at).Take(count).ToArray();
    }
}
