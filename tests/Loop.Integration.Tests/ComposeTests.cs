namespace Loop.Integration.Tests;

using Loop.Testing;

using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

/// <summary>Loop in a container from compose.yaml: what a user checks after `docker compose up -d`.</summary>
public sealed class ComposeTests
{
    [Fact]
    public async Task Compose_up_serves_loop_on_loopback_and_its_agents_work_in_the_users_project_and_reach_loop_mcp()
    {
        await using var loop = await ComposedLoop.UpAsync(new JsonObject
        {
            ["container_image"] = LoopDaemon.TestImage,
            ["api_rate_limit_per_minute"] = 0,
        });

        // Published on the host's loopback only.
        var published = await DockerCli.RunAsync("port", await loop.ContainerIdAsync());
        Assert.Contains($"127.0.0.1:{loop.Port}", published);
        Assert.DoesNotContain("0.0.0.0", published);
        // The engine through the mounted socket, the agent image on it, and a `loop` for agents' tools.
        var health = await loop.GetObjectAsync("/api/health");
        Assert.Equal("up", (string)health["components"]!["docker"]!);
        Assert.Equal("loop", (string)health["node"]!);
        Assert.DoesNotContain(health["warnings"]!.AsArray(), w => ((string)w!).Contains("loop binary"));

        var project = loop.CreateProject("app");
        using var created = await loop.Http.PostAsJsonAsync("/api/channels", new { dir_path = project });
        var channel = (string)(await LoopDaemon.ReadObjectAsync(created, HttpStatusCode.Created))["id"]!;
        using var posted = await loop.Http.PostAsJsonAsync($"/api/channels/{channel}/messages", new
        {
            author = "me",
            content = "[[reply hello from a daemon in a container]] [[pwd]] [[write notes.txt written by the agent]] " +
                """[[mcp schedule_task {"schedule": "10m", "prompt": "look again", "type": "once", "name": "follow-up"}]]""",
        });
        await LoopDaemon.ReadObjectAsync(posted, HttpStatusCode.Accepted);

        JsonObject? run = null;
        await Eventually.WaitAsync(async () =>
        {
            run = (await loop.GetArrayAsync($"/api/channels/{channel}/runs")).SingleOrDefault()?.AsObject();
            return run is not null && LoopDaemon.IsFinal((string)run["status"]!);
        }, "the agent's run to end", TimeSpan.FromSeconds(120));
        Assert.True((string)run!["status"]! == "succeeded", $"{run}\n{await loop.LogsAsync()}");
        var reply = (string)run["reply"]!;
        Assert.Contains("hello from a daemon in a container", reply);
        // The project is at its own path in the agent's container, as on the host.
        Assert.Contains($"pwd: {project}", reply);
        // What the agent wrote is on the host, and belongs to the user the daemon runs as.
        Assert.Equal("written by the agent", await File.ReadAllTextAsync(Path.Combine(project, "notes.txt")));
        Assert.Equal(AgentUser.Effective, AgentUser.OwnerOf(Path.Combine(project, "notes.txt")));
        // `loop mcp` ran in the agent's container (the daemon's binary, copied into the Loop home)
        // and reached the daemon through its socket there.
        var task = Assert.Single(await loop.GetArrayAsync($"/api/tasks?channel_id={channel}"))!;
        Assert.Equal("follow-up", (string)task["name"]!);

        // The host's `loop` finds the daemon from the Loop home alone (config.json and the local token).
        var (exit, output) = await LoopCli.RunAsync(new Dictionary<string, string> { ["LOOP_HOME"] = loop.LoopHome }, "tasks", "list");
        Assert.True(exit == 0, output);
        Assert.Contains("follow-up", output);

        Assert.Empty(await DockerCli.ContainersAsync($"loop.channel={channel}"));
    }
}
