namespace Loop.Integration.Tests;

using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Loop.Testing;

/// <summary>Seed 002's API: the runs of every channel, changing and deleting channels, tasks without a
/// channel and a task's output. A real daemon, real containers, the claude double.</summary>
public sealed class ChannelApiTests
{
    [Fact]
    public async Task Recent_runs_of_every_channel_come_newest_first_filtered_by_status_and_channel_and_paged()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var first = (string)(await loop.CreateChannelAsync())["id"]!;
        var second = (string)(await loop.CreateChannelAsync())["id"]!;
        await loop.PostMessageAsync(first, "[[reply one]]");
        await loop.WaitForFinishedRunsAsync(first, 1);
        await loop.PostMessageAsync(second, "[[fail it broke]]");
        await loop.WaitForFinishedRunsAsync(second, 1);
        await loop.PostMessageAsync(first, "[[reply two]]");
        await loop.WaitForFinishedRunsAsync(first, 2);

        var all = await loop.GetArrayAsync("/api/runs");
        Assert.Equal(["two", "it broke", "one"], all.Select(r => (string?)r!["reply"] ?? (string)r!["error"]!).Select(Last));
        Assert.Equal([first, second, first], all.Select(r => (string)r!["channel_id"]!));

        var failed = await loop.GetArrayAsync("/api/runs?status=failed");
        Assert.Equal(second, (string)failed.Single()!["channel_id"]!);
        Assert.Equal(2, (await loop.GetArrayAsync($"/api/runs?channel_id={first}&status=succeeded")).Count);

        var page1 = await loop.GetArrayAsync("/api/runs?limit=2");
        var page2 = await loop.GetArrayAsync($"/api/runs?limit=2&before={page1[^1]!["id"]}");
        Assert.Equal(all.Select(r => (string)r!["id"]!), page1.Concat(page2).Select(r => (string)r!["id"]!));

        using (var bad = await loop.Http.GetAsync("/api/runs?status=broken"))
        {
            var problem = await LoopDaemon.ReadObjectAsync(bad, HttpStatusCode.BadRequest);
            Assert.Equal("status must be one of queued, running, succeeded, failed, timed_out, cancelled (got 'broken')", (string)problem["detail"]!);
        }

        // A channel token sees its own channel's runs, and no other's.
        using var own = await ChannelClientAsync(loop, second);
        var seen = await own.GetFromJsonAsync<JsonArray>("/api/runs");
        Assert.Equal(second, (string)seen!.Single()!["channel_id"]!);
        using var other = await own.GetAsync($"/api/runs?channel_id={first}");
        Assert.Equal(HttpStatusCode.Forbidden, other.StatusCode);
    }

    [Fact]
    public async Task A_channel_is_renamed_and_moved_and_a_move_forgets_the_session_of_the_old_directory()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var before = AgentUser.CreateDir();
        var after = AgentUser.CreateDir();
        var taken = AgentUser.CreateDir();
        var id = (string)(await loop.CreateChannelAsync(before))["id"]!;
        await loop.CreateChannelAsync(taken);
        await loop.PostMessageAsync(id, "[[session]]");
        await loop.WaitForFinishedRunsAsync(id, 1);
        var session = (string)(await loop.GetObjectAsync($"/api/channels/{id}"))["session_id"]!;

        using (var rename = await loop.Http.PatchAsJsonAsync($"/api/channels/{id}", new { name = "renamed" }))
        {
            var channel = await LoopDaemon.ReadObjectAsync(rename, HttpStatusCode.OK);
            Assert.Equal("renamed", (string)channel["name"]!);
            Assert.Equal(before, (string)channel["dir_path"]!);
            Assert.Equal(session, (string)channel["session_id"]!);
            Assert.Equal("tools", (string)channel["progress"]!);
        }
        using (var verbose = await loop.Http.PatchAsJsonAsync($"/api/channels/{id}", new { progress = "Verbose" }))
        {
            var channel = await LoopDaemon.ReadObjectAsync(verbose, HttpStatusCode.OK);
            Assert.Equal("verbose", (string)channel["progress"]!);
            Assert.Equal(session, (string)channel["session_id"]!);
        }
        Assert.Equal("verbose", (string)(await loop.GetObjectAsync($"/api/channels/{id}"))["progress"]!);

        using (var move = await loop.Http.PutAsJsonAsync($"/api/channels/{id}", new { dir_path = after }))
        {
            var channel = await LoopDaemon.ReadObjectAsync(move, HttpStatusCode.OK);
            Assert.Equal("renamed", (string)channel["name"]!);
            Assert.Equal(after, (string)channel["dir_path"]!);
            Assert.Null(channel["session_id"]);
        }
        await loop.PostMessageAsync(id, "[[pwd]]");
        Assert.Contains($"pwd: {after}", (string)(await loop.WaitForFinishedRunsAsync(id, 2))[1]["reply"]!);

        async Task<string> RefusedAsync(object body, HttpStatusCode status)
        {
            using var response = await loop.Http.PatchAsJsonAsync($"/api/channels/{id}", body);
            return (string)(await LoopDaemon.ReadObjectAsync(response, status))["detail"]!;
        }
        Assert.Contains($"another channel works in {taken} already", await RefusedAsync(new { dir_path = taken }, HttpStatusCode.Conflict));
        Assert.Contains("dir_path must be an absolute path", await RefusedAsync(new { dir_path = "relative/dir" }, HttpStatusCode.BadRequest));
        Assert.Equal("name must be 1 to 100 characters", await RefusedAsync(new { name = " " }, HttpStatusCode.BadRequest));
        Assert.Equal("progress must be \"off\", \"tools\" (the tool calls so far) or \"verbose\" (also the agent's remarks between them) (found \"loud\")",
            await RefusedAsync(new { progress = "loud" }, HttpStatusCode.BadRequest));
        using (var missing = await loop.Http.PatchAsJsonAsync("/api/channels/ch_nonexistent", new { name = "x" }))
        {
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        }

        // A move waits for the run working in the old directory.
        await loop.PostMessageAsync(id, "[[sleep 60]]");
        var running = await loop.WaitForRunningAsync(id);
        Assert.Contains((string)running["id"]!, await RefusedAsync(new { dir_path = before }, HttpStatusCode.Conflict));
        Assert.Equal(after, (string)(await loop.GetObjectAsync($"/api/channels/{id}"))["dir_path"]!);
    }

    [Fact]
    public async Task Deleting_a_channel_takes_its_messages_runs_tasks_and_tokens_and_waits_for_its_work()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var project = AgentUser.CreateDir();
        var id = (string)(await loop.CreateChannelAsync(project))["id"]!;
        var keep = (string)(await loop.CreateChannelAsync())["id"]!;
        var task = (string)(await loop.CreateTaskAsync(new { channel_id = id, type = "interval", schedule = "1h", prompt = "hourly" }))["id"]!;
        await loop.CreateTaskAsync(new { channel_id = keep, type = "interval", schedule = "1h", prompt = "kept" });
        Assert.Equal(2, (int)(await loop.GetObjectAsync("/api/runtime"))["tasks_armed"]!);
        using var own = await ChannelClientAsync(loop, id);

        await loop.PostMessageAsync(id, "[[sleep 60]]");
        var running = await loop.WaitForRunningAsync(id);
        using (var busy = await loop.Http.DeleteAsync($"/api/channels/{id}"))
        {
            var problem = await LoopDaemon.ReadObjectAsync(busy, HttpStatusCode.Conflict);
            Assert.Contains($"run {running["id"]} is running", (string)problem["detail"]!);
        }
        Assert.Equal(id, (string)(await loop.GetObjectAsync($"/api/channels/{id}"))["id"]!);
        await loop.Http.PostAsync($"/api/runs/{running["id"]}/cancel", null);
        await loop.WaitForFinishedRunsAsync(id, 1);

        using (var delete = await loop.Http.DeleteAsync($"/api/channels/{id}"))
        {
            Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        }
        foreach (var gone in new[] { $"/api/channels/{id}", $"/api/tasks/{task}", $"/api/runs/{running["id"]}", $"/api/channels/{id}/messages" })
        {
            using var response = await loop.Http.GetAsync(gone);
            Assert.True(response.StatusCode == HttpStatusCode.NotFound, $"{gone} answered {response.StatusCode}");
        }
        Assert.DoesNotContain(await loop.GetArrayAsync("/api/tasks"), t => (string)t!["channel_id"]! == id);
        Assert.Equal(1, (int)(await loop.GetObjectAsync("/api/runtime"))["tasks_armed"]!);
        using (var revoked = await own.GetAsync("/api/runs"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, revoked.StatusCode);
        }
        Assert.True(Directory.Exists(project)); // the project is the user's: it stays

        using (var again = await loop.Http.DeleteAsync($"/api/channels/{id}"))
        {
            Assert.Equal(HttpStatusCode.NotFound, again.StatusCode);
        }
        // The directory can be registered again, as a new channel.
        Assert.NotEqual(id, (string)(await loop.CreateChannelAsync(project))["id"]!);
    }

    [Fact]
    public async Task A_task_given_no_channel_runs_in_the_tasks_channel_and_its_output_is_read_back()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var once = await loop.CreateTaskAsync(new { type = "once", schedule = "1s", prompt = "[[reply hello from the task]]" });
        Assert.Equal("ch_tasks", (string)once["channel_id"]!);
        var channel = await loop.GetObjectAsync("/api/channels/ch_tasks");
        Assert.Equal("tasks", (string)channel["name"]!);
        Assert.Null(channel["dir_path"]);
        var second = await loop.CreateTaskAsync(new { type = "interval", schedule = "1h", prompt = "later" });
        Assert.Equal("ch_tasks", (string)second["channel_id"]!);

        var before = await loop.GetObjectAsync($"/api/tasks/{once["id"]}/output");
        Assert.Null(before["output"]);
        await loop.WaitForFinishedRunsAsync("ch_tasks", 1);
        var output = await loop.GetObjectAsync($"/api/tasks/{once["id"]}/output");
        Assert.Equal("hello from the task", (string)output["output"]!);
        Assert.Equal((string)once["id"]!, (string)output["task"]!["id"]!);
        Assert.Equal("succeeded", (string)output["runs"]!.AsArray().Single()!["status"]!);

        // A loop task's output is the whole transcript of its cycle, oldest iteration first.
        var loopTask = await loop.CreateTaskAsync(new { type = "loop", name = "transcript", prompt = "[[session]] [[after 2 all finished <promise>DONE</promise>]]" });
        var id = (string)loopTask["id"]!;
        await loop.WaitForTaskAsync(id, t => (string)t["loop_state"]! != "running", TimeSpan.FromSeconds(90));
        var transcript = await loop.GetObjectAsync($"/api/tasks/{id}/output");
        var runs = transcript["runs"]!.AsArray();
        Assert.Equal(3, runs.Count);
        Assert.Contains("prior_turns=0", (string)runs[0]!["reply"]!);
        Assert.Contains("prior_turns=2", (string)runs[2]!["reply"]!);
        Assert.EndsWith("<promise>DONE</promise>", (string)transcript["output"]!);
        Assert.Equal("completed", (string)transcript["task"]!["loop_state"]!);

        using var missing = await loop.Http.GetAsync("/api/tasks/task_nonexistent/output");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    private static string Last(string text) => text.Split('\n')[^1].Trim();

    private static async Task<HttpClient> ChannelClientAsync(LoopDaemon loop, string channelId)
    {
        var token = (string)(await loop.GetObjectAsync($"/api/channels/{channelId}/token"))["token"]!;
        var client = new HttpClient { BaseAddress = new Uri(loop.ApiUrl) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }
}
