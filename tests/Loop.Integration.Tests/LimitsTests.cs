namespace Loop.Integration.Tests;

using Loop.Testing;

using System.Net;
using System.Text.Json.Nodes;

/// <summary>Timeouts, cancellation, memory and the global bound on concurrent containers.</summary>
public sealed class LimitsTests
{
    [Fact]
    public async Task A_run_past_container_timeout_sec_is_killed_and_marked_timed_out()
    {
        await using var loop = await LoopDaemon.StartAsync(new JsonObject { ["container_timeout_sec"] = 3 });
        var id = (string)(await loop.CreateChannelAsync())["id"]!;

        await loop.PostMessageAsync(id, "[[sleep 60]]");
        var run = (await loop.WaitForFinishedRunsAsync(id, 1, TimeSpan.FromSeconds(45))).Single();

        Assert.Equal("timed_out", (string)run["status"]!);
        Assert.Contains("container_timeout_sec", (string)run["error"]!);
        Assert.True((long)run["elapsed_ms"]! < 20_000, $"took {run["elapsed_ms"]} ms");
        Assert.Empty(await DockerCli.ContainersAsync($"loop.run={run["id"]}"));
        var messages = await loop.GetArrayAsync($"/api/channels/{id}/messages");
        Assert.Equal("system", (string)messages.Last()!["role"]!);
    }

    [Fact]
    public async Task Cancelling_a_run_stops_its_container()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var id = (string)(await loop.CreateChannelAsync())["id"]!;

        await loop.PostMessageAsync(id, "[[sleep 60]]");
        var running = await loop.WaitForRunningAsync(id);
        using var cancel = await loop.Http.PostAsync($"/api/runs/{running["id"]}/cancel", null);
        Assert.Equal(HttpStatusCode.Accepted, cancel.StatusCode);

        var run = (await loop.WaitForFinishedRunsAsync(id, 1, TimeSpan.FromSeconds(30))).Single();
        Assert.Equal("cancelled", (string)run["status"]!);
        Assert.Empty(await DockerCli.ContainersAsync($"loop.run={run["id"]}"));

        using var again = await loop.Http.PostAsync($"/api/runs/{running["id"]}/cancel", null);
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        Assert.Contains("already ended", await again.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task The_memory_limit_is_enforced_and_reported_as_out_of_memory()
    {
        await using var loop = await LoopDaemon.StartAsync(new JsonObject { ["container_memory_mb"] = 96 });
        var id = (string)(await loop.CreateChannelAsync())["id"]!;

        await loop.PostMessageAsync(id, "[[alloc 400]]");
        var run = (await loop.WaitForFinishedRunsAsync(id, 1)).Single();

        Assert.Equal("failed", (string)run["status"]!);
        Assert.Contains("out of memory", (string)run["error"]!);
        Assert.Contains("96 MB", (string)run["error"]!);
    }

    [Fact]
    public async Task Channels_run_in_parallel_up_to_max_concurrent_containers_and_the_rest_wait()
    {
        await using var loop = await LoopDaemon.StartAsync(new JsonObject { ["max_concurrent_containers"] = 2 });
        var channels = new List<string>();
        for (var i = 0; i < 4; i++)
        {
            channels.Add((string)(await loop.CreateChannelAsync())["id"]!);
        }
        foreach (var id in channels)
        {
            await loop.PostMessageAsync(id, "[[sleep 3]]");
        }

        var maxRunning = 0;
        var maxContainers = 0;
        var sawWaiting = false;
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (DateTime.UtcNow < deadline)
        {
            var health = await loop.GetObjectAsync("/api/health");
            maxRunning = Math.Max(maxRunning, (int)health["queue"]!["running"]!);
            sawWaiting |= (int)health["queue"]!["waiting"]! > 0;
            // One snapshot of the engine: a call per channel would count a container that stopped
            // before the next call saw its successor.
            var ours = (await DockerCli.RunAsync("ps", "--filter", "label=loop.channel", "--format", "{{.Label \"loop.channel\"}}"))
                .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Count(channels.Contains);
            maxContainers = Math.Max(maxContainers, ours);
            var done = 0;
            foreach (var id in channels)
            {
                var runs = await loop.GetArrayAsync($"/api/channels/{id}/runs");
                done += runs.Count(r => LoopDaemon.IsFinal((string)r!["status"]!));
            }
            if (done == channels.Count)
            {
                break;
            }
            await Task.Delay(100);
        }

        foreach (var id in channels)
        {
            Assert.Equal("succeeded", (string)(await loop.WaitForFinishedRunsAsync(id, 1)).Single()["status"]!);
        }
        Assert.Equal(2, maxRunning);
        Assert.True(maxContainers <= 2, $"saw {maxContainers} containers at once");
        Assert.True(sawWaiting, "no run ever waited for a slot");
    }
}
