namespace Loop.Integration.Tests;

using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Loop.Testing;

/// <summary>Forks with a git worktree of their own, on a real daemon, real Docker and the real git CLI: the
/// fork's first run makes the worktree on a branch of its own and works there, with git usable in its
/// container; the parent's checkout is left as it was; the worktree is removed through the API.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ForkWorktreeTests
{
    [Fact]
    public async Task A_fork_with_a_worktree_works_and_commits_on_a_branch_of_its_own_and_the_parents_checkout_is_untouched()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var project = TestRepository.Create();
        File.WriteAllText(Path.Combine(project, "secret.txt"), "the parent's, not committed");
        AgentUser.GiveToAgents(project);
        var head = TestRepository.Git(project, "rev-parse", "HEAD");
        var parent = (string)(await loop.CreateChannelAsync(project))["id"]!;
        await loop.PostMessageAsync(parent, "[[reply first]]");
        await loop.WaitForFinishedRunsAsync(parent, 1);

        var fork = await ForkAsync(loop, parent, new { name = "explore", worktree = true });
        var forkId = (string)fork["id"]!;
        Assert.Null((string?)fork["worktree"]!["path"]); // made on the first run
        var worktree = Path.Combine(project, ".claude", "worktrees", forkId);

        await loop.PostMessageAsync(forkId, "[[session]] [[pwd]] [[write note.txt from the fork]] [[read ../../../secret.txt]] "
            + "[[sh git add note.txt && git -c user.name=agent -c user.email=agent@example.com commit -qm note && git rev-parse --abbrev-ref HEAD]]");
        var run = (await loop.WaitForFinishedRunsAsync(forkId, 1))[0];
        var reply = (string)run["reply"]!;
        Assert.True((string)run["status"]! == "succeeded", run.ToJsonString());
        Assert.Contains("prior_turns=1", reply); // the parent's conversation came with it, from the parent's directory
        Assert.Contains($"pwd: {worktree}", reply);
        Assert.Contains($"sh exit 0: loop/{forkId}", reply);
        // The agent sees its checkout and the history, not the parent's checkout.
        Assert.Contains("read ../../../secret.txt failed", reply);

        Assert.Equal("from the fork", File.ReadAllText(Path.Combine(worktree, "note.txt")));
        Assert.False(File.Exists(Path.Combine(project, "note.txt")));
        Assert.Equal("note", TestRepository.Git(project, "log", "-1", "--format=%s", $"loop/{forkId}"));
        Assert.Equal((head, "main"), (TestRepository.Git(project, "rev-parse", "HEAD"), TestRepository.Git(project, "rev-parse", "--abbrev-ref", "HEAD")));
        Assert.Equal("?? secret.txt", TestRepository.Git(project, "status", "--porcelain")); // the worktree is not in the parent's status
        Assert.Contains(worktree, TestRepository.Git(project, "worktree", "list"));

        var shown = (await loop.GetObjectAsync($"/api/channels/{forkId}"))["worktree"]!;
        Assert.Equal((worktree, $"loop/{forkId}"), ((string)shown["path"]!, (string)shown["branch"]!));
        Assert.Null((await loop.GetObjectAsync($"/api/channels/{parent}"))["worktree"]);
    }

    [Fact]
    public async Task A_worktree_is_removed_when_clean_kept_when_dirty_unless_forced_and_not_while_a_run_works_in_it()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var project = TestRepository.Create();
        AgentUser.GiveToAgents(project);
        var parent = (string)(await loop.CreateChannelAsync(project))["id"]!;
        var forkId = (string)(await ForkAsync(loop, parent, new { worktree = true }))["id"]!;
        var worktree = Path.Combine(project, ".claude", "worktrees", forkId);

        using (var none = await loop.Http.DeleteAsync($"/api/channels/{forkId}/worktree"))
        {
            await Problem(none, HttpStatusCode.Conflict, "has no git worktree yet");
        }

        await loop.PostMessageAsync(forkId, "[[write scratch.txt not committed]]");
        await loop.WaitForFinishedRunsAsync(forkId, 1);
        using (var dirty = await loop.Http.DeleteAsync($"/api/channels/{forkId}/worktree"))
        {
            await Problem(dirty, HttpStatusCode.Conflict, "changes not committed (?? scratch.txt)");
        }
        Assert.True(File.Exists(Path.Combine(worktree, "scratch.txt")));

        await loop.PostMessageAsync(forkId, "[[sleep 60]]");
        var running = await loop.WaitForRunningAsync(forkId);
        using (var busy = await loop.Http.DeleteAsync($"/api/channels/{forkId}/worktree?force=true"))
        {
            await Problem(busy, HttpStatusCode.Conflict, $"has a run running ({(string)running["id"]!})");
        }
        (await loop.Http.PostAsync($"/api/runs/{(string)running["id"]!}/cancel", null)).Dispose();
        await loop.WaitForFinishedRunsAsync(forkId, 2);

        // The command line says the same, and forces it.
        var cli = new Dictionary<string, string> { ["LOOP_HOME"] = loop.Home, ["LOOP_API_TOKEN"] = "", ["LOOP_CHANNEL_TOKEN"] = "" };
        var (exit, output) = await LoopCli.RunAsync(cli, "channels", "worktree", "remove", forkId, "--api-url", loop.ApiUrl);
        Assert.True(exit == 1, output);
        Assert.StartsWith("loop: ", output);
        Assert.Contains("changes not committed (?? scratch.txt)", output);
        (exit, output) = await LoopCli.RunAsync(cli, "channels", "worktree", "remove", forkId, "--force", "--api-url", loop.ApiUrl);
        Assert.True(exit == 0, output);
        Assert.Contains($"removed the git worktree of {forkId}", output);
        Assert.Null((string?)(await loop.GetObjectAsync($"/api/channels/{forkId}"))["worktree"]!["path"]);
        Assert.False(Directory.Exists(worktree));
        Assert.DoesNotContain(worktree, TestRepository.Git(project, "worktree", "list"));
        Assert.Equal(TestRepository.Git(project, "rev-parse", "HEAD"), TestRepository.Git(project, "rev-parse", $"loop/{forkId}")); // the branch stays

        // The next run makes it again, on the same branch; clean, it goes without force.
        await loop.PostMessageAsync(forkId, "[[pwd]]");
        Assert.Contains($"pwd: {worktree}", (string)(await loop.WaitForFinishedRunsAsync(forkId, 3))[2]["reply"]!);
        using (var clean = await loop.Http.DeleteAsync($"/api/channels/{forkId}/worktree"))
        {
            await LoopDaemon.ReadObjectAsync(clean, HttpStatusCode.OK);
        }
        Assert.False(Directory.Exists(worktree));

        // Deleting a fork removes its clean worktree, and keeps one with work not committed (and says so).
        await loop.PostMessageAsync(forkId, "[[pwd]]");
        await loop.WaitForFinishedRunsAsync(forkId, 4);
        var dirtyFork = (string)(await ForkAsync(loop, parent, new { worktree = true }))["id"]!;
        await loop.PostMessageAsync(dirtyFork, "[[write wip.txt keep me]]");
        await loop.WaitForFinishedRunsAsync(dirtyFork, 1);
        foreach (var id in new[] { forkId, dirtyFork })
        {
            (await loop.Http.DeleteAsync($"/api/channels/{id}")).EnsureSuccessStatusCode();
        }
        Assert.False(Directory.Exists(worktree));
        Assert.True(File.Exists(Path.Combine(project, ".claude", "worktrees", dirtyFork, "wip.txt")));
        var events = await loop.GetArrayAsync("/api/events/recent?limit=200");
        Assert.Contains(events, e => (string)e!["kind"]! == "channel.worktree_kept" && (string)e["channel_id"]! == dirtyFork);
        Assert.Contains(events, e => (string)e!["kind"]! == "channel.worktree_removed" && (string)e["channel_id"]! == forkId);
    }

    [Fact]
    public async Task Forking_with_a_worktree_needs_a_parent_in_a_git_repository()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var plain = (string)(await loop.CreateChannelAsync(AgentUser.CreateDir()))["id"]!;
        using (var notGit = await loop.Http.PostAsJsonAsync($"/api/channels/{plain}/fork", new { worktree = true }))
        {
            await Problem(notGit, HttpStatusCode.BadRequest, "is not inside a git repository");
        }
        var ownFolder = (string)(await loop.CreateChannelAsync())["id"]!;
        using (var noProject = await loop.Http.PostAsJsonAsync($"/api/channels/{ownFolder}/fork", new { worktree = true }))
        {
            await Problem(noProject, HttpStatusCode.Conflict, "no git repository to make a worktree of");
        }
        using (var noWorktree = await loop.Http.DeleteAsync($"/api/channels/{plain}/worktree"))
        {
            await Problem(noWorktree, HttpStatusCode.Conflict, "works in no git worktree of its own");
        }
        // Nothing was made: the refusals left no fork behind.
        Assert.Equal(2, (await loop.GetArrayAsync("/api/channels")).Count);
    }

    [Fact]
    public async Task A_worktree_that_cannot_be_made_fails_the_run_with_the_reason_in_the_chat()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var project = TestRepository.Create();
        AgentUser.GiveToAgents(project);
        var parent = (string)(await loop.CreateChannelAsync(project))["id"]!;
        var forkId = (string)(await ForkAsync(loop, parent, new { worktree = true }))["id"]!;
        // Something is in the way where the worktree goes.
        var worktree = Path.Combine(project, ".claude", "worktrees", forkId);
        Directory.CreateDirectory(worktree);
        File.WriteAllText(Path.Combine(worktree, "in-the-way.txt"), "not a worktree");

        await loop.PostMessageAsync(forkId, "[[pwd]]");
        var run = (await loop.WaitForFinishedRunsAsync(forkId, 1))[0];
        Assert.Equal("failed", (string)run["status"]!);
        Assert.Null(run["container_id"]); // the agent was not started
        var said = (string)(await loop.GetArrayAsync($"/api/channels/{forkId}/messages")).Last()!["content"]!;
        Assert.StartsWith($"The agent run failed: this fork's git worktree could not be made: git worktree add {worktree} failed: fatal: '{worktree}' already exists", said);
        Assert.Contains("the agent was not started", said);
        Assert.Null((string?)(await loop.GetObjectAsync($"/api/channels/{forkId}"))["worktree"]!["path"]);
        var events = await loop.GetArrayAsync("/api/events/recent?limit=200");
        Assert.Contains(events, e => (string)e!["kind"]! == "run.error" && ((string)e["text"]!).Contains("could not be made", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_daemon_runs_none_of_the_commands_an_agent_can_put_in_the_repository_when_it_makes_or_removes_a_worktree()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var project = TestRepository.Create();
        var marks = Directory.CreateTempSubdirectory("loop-marks-").FullName;
        // What an agent of the parent can write in .git: a hook, an fsmonitor, a filter that every checkout and status runs.
        File.WriteAllText(Path.Combine(project, ".gitattributes"), "* filter=evil\n");
        TestRepository.Git(project, "add", ".gitattributes");
        TestRepository.Commit(project, "attributes");
        var hooks = Directory.CreateDirectory(Path.Combine(project, ".git", "evil-hooks")).FullName;
        File.WriteAllText(Path.Combine(hooks, "post-checkout"), $"#!/bin/sh\ntouch {marks}/hook\n");
        File.SetUnixFileMode(Path.Combine(hooks, "post-checkout"), (UnixFileMode)0b111_101_101);
        TestRepository.Git(project, "config", "core.hooksPath", hooks);
        TestRepository.Git(project, "config", "core.fsmonitor", $"touch {marks}/fsmonitor; false");
        TestRepository.Git(project, "config", "filter.evil.smudge", $"touch {marks}/smudge; cat");
        TestRepository.Git(project, "config", "filter.evil.clean", $"touch {marks}/clean; cat");
        AgentUser.GiveToAgents(project);
        var parent = (string)(await loop.CreateChannelAsync(project))["id"]!;
        var forkId = (string)(await ForkAsync(loop, parent, new { worktree = true }))["id"]!;

        await loop.PostMessageAsync(forkId, "[[pwd]]");
        Assert.Contains($"pwd: {Path.Combine(project, ".claude", "worktrees", forkId)}", (string)(await loop.WaitForFinishedRunsAsync(forkId, 1))[0]["reply"]!);
        using (var removed = await loop.Http.DeleteAsync($"/api/channels/{forkId}/worktree"))
        {
            await LoopDaemon.ReadObjectAsync(removed, HttpStatusCode.OK);
        }
        Assert.Empty(Directory.GetFiles(marks));
    }

    private static async Task<JsonObject> ForkAsync(LoopDaemon loop, string parentId, object body)
    {
        using var response = await loop.Http.PostAsJsonAsync($"/api/channels/{parentId}/fork", body);
        return await LoopDaemon.ReadObjectAsync(response, HttpStatusCode.Created);
    }

    private static async Task Problem(HttpResponseMessage response, HttpStatusCode status, string detail)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"{response.StatusCode}: {body}");
        Assert.Contains(detail, body);
    }
}
