namespace Loop.Integration.Tests;

using Loop.Testing;

using System.Net;
using System.Net.Http.Json;

/// <summary>An agent inside its container uses the injected `loop` MCP server.</summary>
public sealed class AgentMcpTests
{
    [Fact]
    public async Task An_agent_in_a_container_schedules_a_follow_up_task_and_cannot_touch_another_channel()
    {
        Assert.True(File.Exists(LoopDaemon.ContainerBinary), $"{LoopDaemon.ContainerBinary} is missing: run `make build` (make test does)");
        await using var loop = await LoopDaemon.StartAsync();
        var health = await loop.GetObjectAsync("/api/health");
        Assert.DoesNotContain(health["warnings"]!.AsArray(), w => ((string)w!).Contains("loop binary"));

        var other = (string)(await loop.CreateChannelAsync())["id"]!;
        using var created = await loop.Http.PostAsJsonAsync("/api/tasks", new { channel_id = other, type = "interval", schedule = "1h", prompt = "not yours" });
        var othersTask = (string)(await LoopDaemon.ReadObjectAsync(created, HttpStatusCode.Created))["id"]!;

        var mine = (string)(await loop.CreateChannelAsync())["id"]!;
        await loop.PostMessageAsync(mine,
            """[[mcp schedule_task {"schedule": "10m", "prompt": "check the build again", "type": "once", "name": "follow-up"}]] """ +
            $$"""[[mcp show_task {"task_id": "{{othersTask}}"}]]""");
        var run = (await loop.WaitForFinishedRunsAsync(mine, 1)).Single();
        Assert.Equal("succeeded", (string)run["status"]!);
        var reply = (string)run["reply"]!;

        var tasks = await loop.GetArrayAsync($"/api/tasks?channel_id={mine}");
        var followUp = Assert.Single(tasks)!;
        Assert.Equal("follow-up", (string)followUp["name"]!);
        Assert.Equal("once", (string)followUp["type"]!);
        Assert.Equal("check the build again", (string)followUp["prompt"]!);
        var due = DateTimeOffset.Parse((string)followUp["next_run_at"]!);
        Assert.InRange(due, DateTimeOffset.UtcNow.AddMinutes(8), DateTimeOffset.UtcNow.AddMinutes(11));
        Assert.Contains("Scheduled task", reply);

        // The container's server was refused on the other channel's task.
        Assert.Contains("may not act on channel", reply);
        Assert.DoesNotContain("not yours", reply);
    }
}
