namespace Loop.Integration.Tests;

using System.Text.Json.Nodes;
using Loop.Testing;
using Microsoft.Data.Sqlite;

/// <summary>kill -9 of <c>loop serve</c> at the worst moments: nothing accepted is lost, nothing is
/// answered twice, and what a crash interrupted is reported.</summary>
public sealed class CrashTests
{
    [Fact]
    public async Task A_kill_after_the_agent_replied_and_before_its_run_ended_answers_the_message_once()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var id = (string)(await loop.CreateChannelAsync())["id"]!;

        using (var feed = await SseFeed.OpenAsync(loop, lastEventId: null))
        {
            // The agent prints its result, then lingers: the daemon holds the reply, the run is not over.
            await loop.PostMessageAsync(id, "[[reply answered once]] [[linger 10]]");
            while (!((string)(await feed.WaitForAsync("run.output")).Data["text"]!).Contains("\"type\":\"result\"", StringComparison.Ordinal))
            {
            }
            await loop.KillAsync();
        }

        await loop.RestartAsync();
        var runs = await loop.WaitForFinishedRunsAsync(id, 2);
        Assert.Equal(2, runs.Count);
        Assert.Equal("failed", (string)runs[0]["status"]!);
        Assert.Contains("interrupted", (string)runs[0]["error"]!);
        Assert.Null(runs[0]["reply"]);
        Assert.Equal("succeeded", (string)runs[1]["status"]!);
        Assert.Equal("answered once", (string)runs[1]["reply"]!);

        var messages = await loop.GetArrayAsync($"/api/channels/{id}/messages");
        Assert.Single(messages, m => (string)m!["role"]! == "user");
        var answer = Assert.Single(messages, m => (string)m!["role"]! == "agent");
        Assert.Equal("answered once", (string)answer!["content"]!);
    }

    [Fact]
    public async Task A_kill_while_a_burst_of_due_tasks_is_claimed_fires_each_slot_exactly_once()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var channels = new List<string>();
        for (var i = 0; i < 4; i++)
        {
            channels.Add((string)(await loop.CreateChannelAsync())["id"]!);
        }
        var due = DateTimeOffset.UtcNow.AddSeconds(4);
        var tasks = new List<string>();
        for (var i = 0; i < 40; i++)
        {
            var task = await loop.CreateTaskAsync(new { channel_id = channels[i % channels.Count], type = "once", schedule = due.ToString("O"), prompt = $"[[reply slot {i}]]" });
            tasks.Add((string)task["id"]!);
        }

        // The kill lands at the due instant: while the grains hand in their slots and the claim is
        // written, or just before or after. Wherever it lands, each slot must fire once.
        while (due - DateTimeOffset.UtcNow is { Ticks: > 0 } left)
        {
            await Task.Delay(left);
        }
        await loop.KillAsync();
        await loop.RestartAsync();

        var deadline = DateTime.UtcNow.AddSeconds(120);
        foreach (var task in tasks)
        {
            JsonArray runs;
            while (true)
            {
                runs = await loop.GetArrayAsync($"/api/tasks/{task}/runs");
                if (runs.Count > 0 && runs.All(r => LoopDaemon.IsFinal((string)r!["status"]!)))
                {
                    break;
                }
                Assert.True(DateTime.UtcNow < deadline, $"task {task} has no finished run: {runs}\n{loop.Output}");
                await Task.Delay(200);
            }
            Assert.True(runs.Count == 1, $"task {task}: {runs}\n{loop.Output}");
            var run = runs[0];
            var status = (string)run!["status"]!;
            // Claimed before the kill and interrupted: reported, not run again. Otherwise it ran once.
            Assert.True(status == "succeeded" || (status == "failed" && ((string)run["error"]!).Contains("interrupted")), $"task {task}: {run}");
            var stored = await loop.GetObjectAsync($"/api/tasks/{task}");
            Assert.Null(stored["next_run_at"]);
        }
    }

    [Theory]
    [InlineData("run_once", 1)]
    [InlineData("skip", 0)]
    public async Task A_task_due_while_the_daemon_was_killed_follows_its_misfire_policy(string misfire, int runsAfterRestart)
    {
        await using var loop = await LoopDaemon.StartAsync(new JsonObject { ["misfire_grace_sec"] = 1 });
        var channel = (string)(await loop.CreateChannelAsync())["id"]!;
        var task = await loop.CreateTaskAsync(new { channel_id = channel, type = "interval", schedule = "1h", prompt = "[[reply caught up]]", misfire });
        var id = (string)task["id"]!;
        var due = DateTimeOffset.Parse((string)task["next_run_at"]!);
        // The grain's reminder is in the store's file before anything is due.
        Assert.Equal(1, await RemindersOfAsync(loop, id));
        await loop.KillAsync();
        Assert.Equal(1, await RemindersOfAsync(loop, id));

        // Move the slot two hours back while nobody runs: the daemon finds it missed by far more than the grace.
        await using (var db = new SqliteConnection($"Data Source={Path.Combine(loop.Home, "loop.db")};Pooling=False"))
        {
            await db.OpenAsync();
            await using var command = db.CreateCommand();
            command.CommandText = "UPDATE tasks SET next_run_at = $due WHERE id = $id";
            command.Parameters.AddWithValue("$due", due.AddHours(-2).ToUnixTimeMilliseconds());
            command.Parameters.AddWithValue("$id", id);
            Assert.Equal(1, await command.ExecuteNonQueryAsync());
        }
        await loop.RestartAsync();

        // Either way the task moves on to its first slot after now, on its cadence: the one it had.
        var moved = await loop.WaitForTaskAsync(id, t => DateTimeOffset.Parse((string)t["next_run_at"]!) > DateTimeOffset.UtcNow);
        Assert.Equal(due, DateTimeOffset.Parse((string)moved["next_run_at"]!));
        if (runsAfterRestart == 1)
        {
            var run = await loop.WaitForAnyFinishedRunAsync(channel);
            Assert.Equal("caught up", (string)run["reply"]!);
        }
        Assert.Equal(runsAfterRestart, (await loop.GetArrayAsync($"/api/tasks/{id}/runs")).Count);
        Assert.Equal(1, await RemindersOfAsync(loop, id));
    }

    /// <summary>The Orleans reminders of the task's grain, read from the daemon's SQLite file as it is on disk.</summary>
    private static async Task<long> RemindersOfAsync(LoopDaemon loop, string taskId)
    {
        await using var db = new SqliteConnection($"Data Source={Path.Combine(loop.Home, "loop.db")};Mode=ReadOnly;Pooling=False");
        await db.OpenAsync();
        await using var command = db.CreateCommand();
        command.CommandText = "SELECT count(*) FROM orleans_reminders WHERE grain_id LIKE '%' || $id";
        command.Parameters.AddWithValue("$id", taskId);
        return (long)(await command.ExecuteScalarAsync())!;
    }
}
