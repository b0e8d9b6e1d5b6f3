namespace Loop.Integration.Tests;

using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Loop.Testing;

/// <summary>min_task_interval_sec: no task comes due more often, whoever schedules it.</summary>
public sealed class TaskIntervalMinimumTests
{
    private static readonly JsonObject AtTheDefault = new() { ["min_task_interval_sec"] = 60 };

    private static async Task<string> RefusedAsync(HttpResponseMessage response)
    {
        var problem = await LoopDaemon.ReadObjectAsync(response, HttpStatusCode.BadRequest);
        Assert.True(problem["errors"]!.AsObject().ContainsKey("schedule"), $"schedule not named in {problem}");
        return (string)problem["detail"]!;
    }

    [Fact]
    public async Task Schedules_that_fire_more_often_than_the_minimum_are_refused_on_create_and_edit_saying_the_minimum()
    {
        await using var loop = await LoopDaemon.StartAsync(AtTheDefault.DeepClone().AsObject());
        var channel = (string)(await loop.CreateChannelAsync())["id"]!;
        async Task<HttpResponseMessage> Create(string type, string schedule) =>
            await loop.Http.PostAsJsonAsync("/api/tasks", new { channel_id = channel, type, schedule, prompt = "x" });

        Assert.Equal("schedule must be at least 60s (min_task_interval_sec); got 1s", await RefusedAsync(await Create("interval", "1s")));
        Assert.Equal("schedule '* * * * * *' fires as often as every 1s; a task may run at most once every 60s (min_task_interval_sec)",
            await RefusedAsync(await Create("cron", "* * * * * *")));
        Assert.Contains("every 10s; a task may run at most once every 60s (min_task_interval_sec)", await RefusedAsync(await Create("cron", "*/10 * * * * *")));
        Assert.Empty(await loop.GetArrayAsync($"/api/tasks?channel_id={channel}"));

        using var minutely = await Create("interval", "60s");
        var task = await LoopDaemon.ReadObjectAsync(minutely, HttpStatusCode.Created);
        using var everyMinute = await Create("cron", "* * * * *");
        await LoopDaemon.ReadObjectAsync(everyMinute, HttpStatusCode.Created);

        var id = (string)task["id"]!;
        using (var edit = await loop.Http.PatchAsJsonAsync($"/api/tasks/{id}", new { schedule = "1s" }))
        {
            Assert.Equal("schedule must be at least 60s (min_task_interval_sec); got 1s", await RefusedAsync(edit));
        }
        using (var edit = await loop.Http.PatchAsJsonAsync($"/api/tasks/{id}", new { type = "cron", schedule = "*/5 * * * * *" }))
        {
            Assert.Contains("(min_task_interval_sec)", await RefusedAsync(edit));
        }
        var unchanged = await loop.GetObjectAsync($"/api/tasks/{id}");
        Assert.Equal(("interval", "1m", (string?)task["next_run_at"]), ((string)unchanged["type"]!, (string)unchanged["schedule"]!, (string?)unchanged["next_run_at"]));
    }

    [Fact]
    public async Task An_agent_cannot_schedule_a_task_that_runs_every_second_through_its_channel_token()
    {
        await using var loop = await LoopDaemon.StartAsync(AtTheDefault.DeepClone().AsObject());
        var channel = (string)(await loop.CreateChannelAsync())["id"]!;

        await loop.PostMessageAsync(channel,
            """[[mcp schedule_task {"type": "interval", "schedule": "1s", "prompt": "again"}]] [[mcp schedule_task {"type": "cron", "schedule": "* * * * * *", "prompt": "again"}]]""");
        var run = (await loop.WaitForFinishedRunsAsync(channel, 1)).Single();

        var reply = (string)run["reply"]!;
        Assert.Contains("schedule must be at least 60s (min_task_interval_sec); got 1s", reply);
        Assert.Contains("a task may run at most once every 60s (min_task_interval_sec)", reply);
        Assert.Empty(await loop.GetArrayAsync($"/api/tasks?channel_id={channel}"));
    }

    [Fact]
    public async Task A_task_template_that_fires_more_often_than_the_minimum_stops_the_daemon_at_start_saying_why()
    {
        var home = Directory.CreateTempSubdirectory("loop-it-").FullName;
        var config = AtTheDefault.DeepClone().AsObject();
        config["task_templates"] = new JsonArray(new JsonObject
        {
            ["name"] = "heartbeat",
            ["schedule"] = "10s",
            ["type"] = "interval",
            ["prompt"] = "ping",
        });

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => LoopDaemon.StartAsync(config, home: home));

        Assert.Contains("task_templates[0] ('heartbeat'): schedule must be at least 60s (min_task_interval_sec); got 10s", error.Message);
        Directory.Delete(home, recursive: true);
    }
}
