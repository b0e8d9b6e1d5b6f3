namespace Loop.Integration.Tests;

using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Loop.Testing;

/// <summary>What the web dashboard reads: the runtime view, the channel overview, and the session reset.</summary>
public sealed class DashboardApiTests
{
    [Fact]
    public async Task Runtime_shows_the_pool_the_live_actors_and_the_runs_of_the_last_hour()
    {
        await using var loop = await LoopDaemon.StartAsync(new JsonObject { ["max_concurrent_containers"] = 2 });
        var done = (string)(await loop.CreateChannelAsync())["id"]!;
        var busy = (await loop.CreateChannelAsync()).AsObject();
        var busyId = (string)busy["id"]!;

        await loop.PostMessageAsync(done, "[[reply one]]");
        await loop.WaitForFinishedRunsAsync(done, 1);
        await loop.PostMessageAsync(done, "[[fail something broke]]");
        var finished = await loop.WaitForFinishedRunsAsync(done, 2);
        Assert.Equal(["succeeded", "failed"], finished.Select(r => (string)r["status"]!));

        await loop.PostMessageAsync(busyId, "[[sleep 60]]");
        var running = await loop.WaitForRunningAsync(busyId);
        await loop.PostMessageAsync(busyId, "[[reply after the sleep]]");
        using (var task = await loop.Http.PostAsJsonAsync("/api/tasks", new { channel_id = done, type = "interval", schedule = "1h", prompt = "hourly" }))
        {
            Assert.Equal(HttpStatusCode.Created, task.StatusCode);
        }
        var before = (int)(await loop.GetObjectAsync("/api/runtime"))["event_subscribers"]!;
        using var feed = await SseFeed.OpenAsync(loop, lastEventId: null);

        var runtime = await WaitForSubscribersAsync(loop, before + 1);

        Assert.False(string.IsNullOrEmpty((string?)runtime["node"]));
        Assert.False(string.IsNullOrEmpty((string?)runtime["version"]));
        Assert.True((int)runtime["pid"]! > 0);
        Assert.True((double)runtime["uptime_seconds"]! > 0);
        Assert.Equal("docker", (string)runtime["runner"]!);
        Assert.Equal(2, (int)runtime["pool"]!["capacity"]!);
        Assert.Equal(1, (int)runtime["pool"]!["running"]!);
        Assert.Equal(0, (int)runtime["pool"]!["waiting"]!);
        Assert.Equal(1, (int)runtime["tasks_armed"]!);
        Assert.True((bool)runtime["store"]!["ok"]!);
        Assert.True((bool)runtime["docker"]!["reachable"]!);
        Assert.Equal("present", (string)runtime["docker"]!["image_status"]!);

        var actor = runtime["actors"]!.AsArray().Single(a => (string)a!["channel_id"]! == busyId)!;
        Assert.Equal((string)busy["name"]!, (string)actor["channel_name"]!);
        Assert.Equal((string)running["id"]!, (string)actor["active_run_id"]!);
        Assert.Equal(1, (int)actor["queued"]!); // the message posted during the sleep
        if (runtime["actors"]!.AsArray().SingleOrDefault(a => (string)a!["channel_id"]! == done) is { } idle)
        {
            Assert.Null(idle["active_run_id"]);
            Assert.Equal(0, (int)idle["queued"]!);
        }

        var minutes = runtime["runs_per_minute"]!.AsArray().Select(m => m!.AsObject()).ToList();
        Assert.Equal(60, minutes.Count);
        var starts = minutes.Select(m => DateTimeOffset.Parse((string)m["minute"]!)).ToList();
        Assert.All(starts, s => Assert.Equal(TimeSpan.Zero, s.Offset));
        Assert.All(starts, s => Assert.Equal(0, s.Second + s.Millisecond));
        Assert.All(starts.Zip(starts.Skip(1)), p => Assert.Equal(TimeSpan.FromMinutes(1), p.Second - p.First));
        Assert.InRange(DateTimeOffset.UtcNow - starts[^1], TimeSpan.Zero, TimeSpan.FromMinutes(1.5));
        Assert.Equal(2, minutes.Sum(m => (int)m["runs"]!));
        Assert.Equal(1, minutes.Sum(m => (int)m["failed"]!));

        var durations = runtime["durations"]!;
        var elapsed = finished.Select(r => (long)r["elapsed_ms"]!).Order().ToList();
        Assert.Equal(60, (int)durations["window_minutes"]!);
        Assert.Equal(2, (int)durations["count"]!);
        Assert.Equal(elapsed[0], (long)durations["p50_ms"]!);
        Assert.Equal(elapsed[1], (long)durations["p90_ms"]!);
        Assert.Equal(elapsed[1], (long)durations["p99_ms"]!);
        Assert.Equal(elapsed[1], (long)durations["max_ms"]!);

        await loop.Http.PostAsync($"/api/runs/{running["id"]}/cancel", null);
    }

    [Fact]
    public async Task Runtime_of_a_fresh_daemon_has_no_runs_and_needs_a_user()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var channel = (string)(await loop.CreateChannelAsync())["id"]!;

        var runtime = await loop.GetObjectAsync("/api/runtime");
        Assert.Empty(runtime["actors"]!.AsArray());
        Assert.All(runtime["runs_per_minute"]!.AsArray(), m => Assert.Equal(0, (int)m!["runs"]!));
        Assert.Equal(0, (int)runtime["durations"]!["count"]!);
        Assert.Null(runtime["durations"]!["p50_ms"]);
        Assert.Null(runtime["durations"]!["max_ms"]);

        using var anonymous = new HttpClient { BaseAddress = new Uri(loop.ApiUrl) };
        using (var response = await anonymous.GetAsync("/api/runtime"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        }
        using var agent = await ChannelClientAsync(loop, channel);
        using (var response = await agent.GetAsync("/api/runtime"))
        {
            Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
            Assert.Contains("channel token", await response.Content.ReadAsStringAsync());
        }
    }

    [Fact]
    public async Task Channel_list_pages_searches_and_shows_each_channels_work()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var root = Directory.CreateTempSubdirectory("loop-dash-").FullName;
        var alpha = await loop.CreateChannelAsync(Directory.CreateDirectory(Path.Combine(root, "proj-alpha")).FullName);
        var beta = await loop.CreateChannelAsync(Directory.CreateDirectory(Path.Combine(root, "proj-Beta")).FullName);
        var other = await loop.CreateChannelAsync(Directory.CreateDirectory(Path.Combine(root, "other")).FullName);
        var (alphaId, betaId, otherId) = ((string)alpha["id"]!, (string)beta["id"]!, (string)other["id"]!);

        await loop.PostMessageAsync(alphaId, "[[reply done]]");
        var alphaRun = (await loop.WaitForFinishedRunsAsync(alphaId, 1)).Single();
        await loop.PostMessageAsync(betaId, "[[sleep 60]]");
        var betaRun = await loop.WaitForRunningAsync(betaId);
        await loop.PostMessageAsync(betaId, "[[reply next]]");
        await loop.PostMessageAsync(betaId, "[[reply and this]]");

        var (all, total) = await ListAsync(loop.Http, "/api/channels");
        Assert.Equal(3, total);
        Assert.Equal([alphaId, betaId, otherId], all.Select(c => (string)c["id"]!));

        var a = all[0];
        Assert.Equal(0, (int)a["queued"]!);
        Assert.Null(a["active_run_id"]);
        Assert.Equal((string)alphaRun["id"]!, (string)a["last_run"]!["id"]!);
        Assert.Equal("succeeded", (string)a["last_run"]!["status"]!);
        Assert.NotNull(a["last_run"]!["created_at"]);
        Assert.NotNull(a["last_run"]!["finished_at"]);

        var b = all[1];
        Assert.Equal(2, (int)b["queued"]!);
        Assert.Equal((string)betaRun["id"]!, (string)b["active_run_id"]!);
        Assert.Equal((string)betaRun["id"]!, (string)b["last_run"]!["id"]!);
        Assert.Equal("running", (string)b["last_run"]!["status"]!);
        Assert.Null(b["last_run"]!["finished_at"]);

        var o = all[2];
        Assert.Equal(0, (int)o["queued"]!);
        Assert.Null(o["active_run_id"]);
        Assert.Null(o["last_run"]);
        Assert.Equal(b.ToJsonString(), (await loop.GetObjectAsync($"/api/channels/{betaId}")).ToJsonString());

        var (first, firstTotal) = await ListAsync(loop.Http, "/api/channels?limit=2");
        Assert.Equal(3, firstTotal);
        Assert.Equal([alphaId, betaId], first.Select(c => (string)c["id"]!));
        var (second, _) = await ListAsync(loop.Http, "/api/channels?limit=2&offset=2");
        Assert.Equal([otherId], second.Select(c => (string)c["id"]!));
        var (beyond, beyondTotal) = await ListAsync(loop.Http, "/api/channels?offset=5");
        Assert.Empty(beyond);
        Assert.Equal(3, beyondTotal);

        var (proj, projTotal) = await ListAsync(loop.Http, "/api/channels?q=PROJ&limit=1");
        Assert.Equal(2, projTotal);
        Assert.Equal([alphaId], proj.Select(c => (string)c["id"]!));
        var (byName, _) = await ListAsync(loop.Http, "/api/channels?q=beta");
        Assert.Equal([betaId], byName.Select(c => (string)c["id"]!));
        var (byDir, byDirTotal) = await ListAsync(loop.Http, $"/api/channels?q={Uri.EscapeDataString(Path.GetFileName(root))}");
        Assert.Equal(3, byDirTotal);
        var (none, noneTotal) = await ListAsync(loop.Http, "/api/channels?q=nothing-like-this");
        Assert.Empty(none);
        Assert.Equal(0, noneTotal);

        foreach (var (query, field) in new[] { ("limit=0", "limit"), ("limit=501", "limit"), ("limit=ten", "limit"), ("offset=-1", "offset") })
        {
            using var response = await loop.Http.GetAsync($"/api/channels?{query}");
            var problem = await LoopDaemon.ReadObjectAsync(response, HttpStatusCode.BadRequest);
            Assert.True(problem["errors"]!.AsObject().ContainsKey(field), $"{query}: {problem}");
        }

        using var agent = await ChannelClientAsync(loop, alphaId);
        var (own, ownTotal) = await ListAsync(agent, "/api/channels");
        Assert.Equal(1, ownTotal);
        Assert.Equal([alphaId], own.Select(c => (string)c["id"]!));
        var (foreign, foreignTotal) = await ListAsync(agent, "/api/channels?q=beta");
        Assert.Empty(foreign);
        Assert.Equal(0, foreignTotal);

        await loop.Http.PostAsync($"/api/runs/{betaRun["id"]}/cancel", null);
        Directory.Delete(root, recursive: true);
    }

    [Fact]
    public async Task Session_reset_makes_the_next_run_start_a_new_conversation()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var channel = (string)(await loop.CreateChannelAsync())["id"]!;
        var neighbour = (string)(await loop.CreateChannelAsync())["id"]!;

        await loop.PostMessageAsync(channel, "[[session]]");
        var (session, firstTurns) = SessionOf((await loop.WaitForFinishedRunsAsync(channel, 1))[^1]);
        Assert.Equal(0, firstTurns);
        await loop.PostMessageAsync(channel, "[[session]]");
        var resumed = SessionOf((await loop.WaitForFinishedRunsAsync(channel, 2))[^1]);
        Assert.Equal((session, 1), resumed);
        Assert.Equal(session, (string)(await loop.GetObjectAsync($"/api/channels/{channel}"))["session_id"]!);

        // Busy: the running run holds the session, so the reset is refused and changes nothing.
        await loop.PostMessageAsync(channel, "[[sleep 60]]");
        var running = await loop.WaitForRunningAsync(channel);
        using (var busy = await loop.Http.PostAsync($"/api/channels/{channel}/session/reset", null))
        {
            var problem = await LoopDaemon.ReadObjectAsync(busy, HttpStatusCode.Conflict);
            Assert.Contains((string)running["id"]!, (string)problem["detail"]!);
            Assert.Contains("cancel", (string)problem["detail"]!);
        }
        Assert.Equal(session, (string)(await loop.GetObjectAsync($"/api/channels/{channel}"))["session_id"]!);
        await loop.Http.PostAsync($"/api/runs/{running["id"]}/cancel", null);
        await loop.WaitForFinishedRunsAsync(channel, 3);

        using var stranger = await ChannelClientAsync(loop, neighbour);
        using (var forbidden = await stranger.PostAsync($"/api/channels/{channel}/session/reset", null))
        {
            Assert.Equal(HttpStatusCode.Forbidden, forbidden.StatusCode);
        }
        Assert.Equal(session, (string)(await loop.GetObjectAsync($"/api/channels/{channel}"))["session_id"]!);

        using var feed = await SseFeed.OpenAsync(loop, lastEventId: null);
        await WaitForSubscribersAsync(loop, 1);
        using var own = await ChannelClientAsync(loop, channel);
        using (var reset = await own.PostAsync($"/api/channels/{channel}/session/reset", null))
        {
            var dto = await LoopDaemon.ReadObjectAsync(reset, HttpStatusCode.OK);
            Assert.Equal(channel, (string)dto["id"]!);
            Assert.Null(dto["session_id"]);
            Assert.Equal(0, (int)dto["queued"]!);
        }
        var announced = (await feed.WaitForAsync("channel.session_reset")).Data;
        Assert.Equal(channel, (string)announced["channel_id"]!);
        Assert.Null((await loop.GetObjectAsync($"/api/channels/{channel}"))["session_id"]);

        await loop.PostMessageAsync(channel, "[[session]]");
        var fresh = SessionOf((await loop.WaitForFinishedRunsAsync(channel, 4))[^1]);
        Assert.NotEqual(session, fresh.Id);
        Assert.Equal(0, fresh.PriorTurns); // no --resume: the double saw a session without history
        Assert.Equal(fresh.Id, (string)(await loop.GetObjectAsync($"/api/channels/{channel}"))["session_id"]!);
    }

    /// <summary>The session id and earlier prompts the double reported for <c>[[session]]</c>.</summary>
    private static (string Id, int PriorTurns) SessionOf(JsonObject run)
    {
        Assert.Equal("succeeded", (string)run["status"]!);
        var match = Regex.Match((string)run["reply"]!, @"session (\S+) prior_turns=(\d+)");
        Assert.True(match.Success, $"no session report in {run}");
        return (match.Groups[1].Value, int.Parse(match.Groups[2].Value));
    }

    private static async Task<(List<JsonObject> Channels, int Total)> ListAsync(HttpClient http, string path)
    {
        using var response = await http.GetAsync(path);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"GET {path}: {(int)response.StatusCode} {text}");
        var total = int.Parse(response.Headers.GetValues("X-Total-Count").Single());
        return (JsonNode.Parse(text)!.AsArray().Select(c => c!.AsObject()).ToList(), total);
    }

    private static async Task<HttpClient> ChannelClientAsync(LoopDaemon loop, string channelId)
    {
        var token = (string)(await loop.GetObjectAsync($"/api/channels/{channelId}/token"))["token"]!;
        var client = new HttpClient { BaseAddress = new Uri(loop.ApiUrl) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    /// <summary>The runtime once it counts <paramref name="count"/> live-feed subscribers (a new
    /// stream subscribes just after it says it is connected).</summary>
    private static async Task<JsonObject> WaitForSubscribersAsync(LoopDaemon loop, int count)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            var runtime = await loop.GetObjectAsync("/api/runtime");
            if ((int)runtime["event_subscribers"]! == count)
            {
                return runtime;
            }
            Assert.True(DateTime.UtcNow < deadline, $"event_subscribers stayed {runtime["event_subscribers"]}, expected {count}");
            await Task.Delay(50);
        }
    }
}
