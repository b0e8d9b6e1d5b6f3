namespace Loop.Integration.Tests;

using System.Text.Json.Nodes;
using Loop.Testing;

/// <summary>Agents never run as root, so nothing they leave in a project (a setuid program, say)
/// lets a user of the host become root. CI runs these as root, which is the case that matters; run
/// as another user, they check that agents run as that user.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ContainerUserTests
{
    /// <summary>Who the agent is, and a setuid copy of bash it plants in its project.</summary>
    private const string PlantSetuidShell = "[[sh id -u; id -g; cp /bin/bash ./rootshell && chmod 4755 ./rootshell && echo planted]]";

    [Fact]
    public async Task Without_container_user_a_root_daemon_runs_the_agent_as_the_project_directorys_owner()
    {
        await using var loop = await LoopDaemon.StartAsync(new JsonObject { ["container_user"] = null });
        var project = AgentUser.CreateDir(); // the tests' own user's, or 1000:1000 when the tests run as root
        var id = (string)(await loop.CreateChannelAsync(project))["id"]!;

        await loop.PostMessageAsync(id, PlantSetuidShell);
        var run = (await loop.WaitForFinishedRunsAsync(id, 1)).Single();

        var owner = AgentUser.Effective;
        Assert.Equal("succeeded", (string)run["status"]!);
        Assert.Equal($"sh exit 0: {owner.Replace(':', '\n')}\nplanted", (string)run["reply"]!);
        var shell = Path.Combine(project, "rootshell");
        Assert.Equal(owner, AgentUser.OwnerOf(shell));
        Assert.True(File.GetUnixFileMode(shell).HasFlag(UnixFileMode.SetUser));
        Assert.NotEqual("0", owner.Split(':')[0]);
    }

    [Fact]
    public async Task Without_container_user_a_root_daemon_refuses_a_project_directory_that_root_owns()
    {
        await using var loop = await LoopDaemon.StartAsync(new JsonObject { ["container_user"] = null });
        var project = Directory.CreateTempSubdirectory("loop-root-proj-").FullName;
        File.SetUnixFileMode(project, (UnixFileMode)0b111_101_101);
        var id = (string)(await loop.CreateChannelAsync(project))["id"]!;
        var health = await loop.GetObjectAsync("/api/health");

        await loop.PostMessageAsync(id, "[[sh id -u]]");
        var run = (await loop.WaitForFinishedRunsAsync(id, 1)).Single();
        var messages = await loop.GetArrayAsync($"/api/channels/{id}/messages");

        var warnings = health["warnings"]!.AsArray().Select(w => (string)w!).ToList();
        if (!AgentUser.TestsRunAsRoot)
        {
            // A daemon that is not root runs agents as itself, wherever they work.
            Assert.Equal("succeeded", (string)run["status"]!);
            Assert.Equal($"sh exit 0: {AgentUser.Effective.Split(':')[0]}", (string)run["reply"]!);
            Assert.DoesNotContain(warnings, w => w.Contains("runs as root"));
            return;
        }
        var reason = $"Loop runs as root and {project} belongs to root: agents never run as root; " +
            $"set container_user in {Path.Combine(loop.Home, "config.json")} (like \"1000:1000\") and give that user the directory";
        Assert.Equal("failed", (string)run["status"]!);
        Assert.Equal(reason, (string)run["error"]!);
        Assert.Equal($"The agent run failed: {reason}", (string)messages.Last()!["content"]!);
        Assert.Empty(await DockerCli.ContainersAsync($"loop.run={run["id"]}"));
        Assert.Contains(warnings, w => w.StartsWith("loop serve runs as root: each agent container runs as the owner of its project directory", StringComparison.Ordinal));
        Assert.Contains("loop serve runs as root", loop.Output);
    }

    [Fact]
    public async Task Container_user_is_used_and_owns_the_directories_loop_makes_for_the_run()
    {
        // As root, a user that owns nothing here; otherwise the tests' own (the only one it may give files to).
        var user = AgentUser.TestsRunAsRoot ? "4321:4322" : AgentUser.Effective;
        await using var loop = await LoopDaemon.StartAsync(new JsonObject { ["container_user"] = user });
        var project = AgentUser.CreateDir();
        File.SetUnixFileMode(project, (UnixFileMode)0b111_111_111);
        var inProject = (string)(await loop.CreateChannelAsync(project))["id"]!;
        var homeless = (string)(await loop.CreateChannelAsync())["id"]!;
        var health = await loop.GetObjectAsync("/api/health");

        await loop.PostMessageAsync(inProject, PlantSetuidShell);
        await loop.PostMessageAsync(homeless, "[[write made.txt by the agent]] [[sh id -u]]");
        var projectRun = (await loop.WaitForFinishedRunsAsync(inProject, 1)).Single();
        var homelessRun = (await loop.WaitForFinishedRunsAsync(homeless, 1)).Single();

        Assert.Equal($"sh exit 0: {user.Replace(':', '\n')}\nplanted", (string)projectRun["reply"]!);
        Assert.Equal(user, AgentUser.OwnerOf(Path.Combine(project, "rootshell")));
        Assert.Equal(AgentUser.Effective, AgentUser.OwnerOf(project)); // the project itself is left as it was
        Assert.Equal($"wrote 12 chars to made.txt\nsh exit 0: {user.Split(':')[0]}", (string)homelessRun["reply"]!);
        var work = Path.Combine(loop.Home, homeless, "work");
        Assert.Equal(user, AgentUser.OwnerOf(work));
        Assert.Equal(user, AgentUser.OwnerOf(Path.Combine(work, "made.txt")));
        Assert.Equal(user, AgentUser.OwnerOf(Path.Combine(loop.Home, "claude-state", homeless)));
        if (AgentUser.TestsRunAsRoot)
        {
            Assert.Contains(health["warnings"]!.AsArray(), w => (string)w! == $"loop serve runs as root: agent containers run as container_user {user}");
        }
    }

    [Fact]
    public async Task A_container_user_of_root_or_not_numeric_stops_the_daemon_with_the_key_named()
    {
        foreach (var bad in new[] { "0:0", "1000:0", "root", "1000" })
        {
            var error = await Assert.ThrowsAsync<InvalidOperationException>(() => LoopDaemon.StartAsync(new JsonObject { ["container_user"] = bad }));

            Assert.Contains($"'container_user' must be the numeric \"uid:gid\" of a user other than root", error.Message);
            Assert.Contains($"(found \"{bad}\")", error.Message);
        }
    }
}
