namespace Loop.Integration.Tests;

using Loop.Testing;

using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

/// <summary>Scheduled and loop tasks end to end: a real daemon, real containers, the claude double.</summary>
public sealed class TaskTests
{
    [Fact]
    public async Task A_cron_task_fires_on_time_and_its_runs_are_recorded_until_it_is_disabled()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var channel = (string)(await loop.CreateChannelAsync())["id"]!;
        var task = await loop.CreateTaskAsync(new { channel_id = channel, type = "cron", schedule = "*/2 * * * * *", prompt = "[[reply tick]] [[usage in=5 out=6 cost=0.001]]" });
        var id = (string)task["id"]!;
        Assert.Equal("cron", (string)task["type"]!);
        var firstDue = DateTimeOffset.Parse((string)task["next_run_at"]!);
        Assert.Equal(0, firstDue.Second % 2);

        var fired = await loop.WaitForTaskAsync(id, t => t["last_run_at"] is not null, TimeSpan.FromSeconds(30));
        Assert.True(DateTimeOffset.Parse((string)fired["next_run_at"]!) > firstDue);

        var deadline = DateTime.UtcNow.AddSeconds(60);
        JsonArray runs;
        do
        {
            await Task.Delay(300);
            runs = await loop.GetArrayAsync($"/api/tasks/{id}/runs");
        }
        while (runs.Count(r => (string)r!["status"]! == "succeeded") < 2 && DateTime.UtcNow < deadline);
        var done = runs.Where(r => (string)r!["status"]! == "succeeded").ToList();
        Assert.True(done.Count >= 2, $"runs: {runs}");
        Assert.All(done, r =>
        {
            Assert.Equal(id, (string)r!["task_id"]!);
            Assert.Contains("tick", (string)r["reply"]!);
            Assert.Equal(5, (long)r["usage"]!["input_tokens"]!);
        });
        // Task output lands in the channel's conversation too.
        var messages = await loop.GetArrayAsync($"/api/channels/{channel}/messages");
        Assert.Contains(messages, m => (string)m!["role"]! == "agent" && ((string)m["content"]!).Contains("tick"));

        using var disable = await loop.Http.PatchAsJsonAsync($"/api/tasks/{id}", new { enabled = false });
        var disabled = await LoopDaemon.ReadObjectAsync(disable, HttpStatusCode.OK);
        Assert.False((bool)disabled["enabled"]!);
        Assert.Null(disabled["next_run_at"]);
        await Task.Delay(3000); // let a run that was already queued finish
        var before = (await loop.GetArrayAsync($"/api/tasks/{id}/runs")).Count;
        await Task.Delay(5000);
        Assert.Equal(before, (await loop.GetArrayAsync($"/api/tasks/{id}/runs")).Count);
    }

    [Fact]
    public async Task A_loop_task_iterates_with_its_own_session_until_the_promise()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var channel = (string)(await loop.CreateChannelAsync())["id"]!;
        var task = await loop.CreateTaskAsync(new
        {
            channel_id = channel,
            type = "loop",
            name = "refactor",
            prompt = "[[session]] [[after 2 all finished <promise>DONE</promise>]]",
        });
        var id = (string)task["id"]!;
        Assert.Equal("running", (string)task["loop_state"]!);

        var done = await loop.WaitForTaskAsync(id, t => (string)t["loop_state"]! != "running", TimeSpan.FromSeconds(90));
        Assert.Equal("completed", (string)done["loop_state"]!);
        Assert.Equal(3, (int)done["iteration"]!);
        Assert.Contains("<promise>DONE</promise>", (string)done["stop_reason"]!);

        var runs = (await loop.GetArrayAsync($"/api/tasks/{id}/runs")).Reverse().ToList();
        Assert.Equal(3, runs.Count);
        // Each iteration continued the task's own session, and was given the previous output.
        Assert.Contains("prior_turns=0", (string)runs[0]!["reply"]!);
        Assert.Contains("prior_turns=2", (string)runs[2]!["reply"]!);
        Assert.Contains((string)runs[0]!["reply"]!, (string)runs[1]!["prompt"]!);
        Assert.Equal((string)runs[0]!["session_id"]!, (string)runs[2]!["session_id"]!);
        // ... which is not the channel's chat session.
        Assert.Null((await loop.GetObjectAsync($"/api/channels/{channel}"))["session_id"]);
    }

    [Fact]
    public async Task A_loop_task_stops_on_no_progress_and_can_be_stopped_and_restarted()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var channel = (string)(await loop.CreateChannelAsync())["id"]!;
        var same = await loop.CreateTaskAsync(new { channel_id = channel, type = "loop", prompt = "[[reply the same answer]]" });
        var stuck = await loop.WaitForTaskAsync((string)same["id"]!, t => (string)t["loop_state"]! != "running", TimeSpan.FromSeconds(60));
        Assert.Equal("stopped", (string)stuck["loop_state"]!);
        Assert.Contains("no progress", (string)stuck["stop_reason"]!);
        Assert.Equal(2, (await loop.GetArrayAsync($"/api/tasks/{same["id"]}/runs")).Count);

        var slow = await loop.CreateTaskAsync(new { channel_id = channel, type = "loop", prompt = "[[session]] [[sleep 30]]", max_iterations = 3 });
        var slowId = (string)slow["id"]!;
        await loop.WaitForRunningAsync(channel);
        using (var stop = await loop.Http.PostAsync($"/api/tasks/{slowId}/stop", null))
        {
            Assert.Equal(HttpStatusCode.Accepted, stop.StatusCode);
        }
        var stopped = await loop.GetObjectAsync($"/api/tasks/{slowId}");
        Assert.Equal("stopped", (string)stopped["loop_state"]!);
        Assert.Contains("stopped by request", (string)stopped["stop_reason"]!);
        var cancelled = (await loop.WaitForFinishedRunsAsync(channel, 3)).Last();
        Assert.Equal("cancelled", (string)cancelled["status"]!);

        using (var again = await loop.Http.PostAsync($"/api/tasks/{slowId}/stop", null))
        {
            Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        }
        using (var start = await loop.Http.PostAsync($"/api/tasks/{slowId}/start", null))
        {
            var restarted = await LoopDaemon.ReadObjectAsync(start, HttpStatusCode.Accepted);
            Assert.Equal("running", (string)restarted["loop_state"]!);
            Assert.Equal(1, (int)restarted["iteration"]!);
        }
    }

    [Fact]
    public async Task Once_tasks_given_as_durations_each_run_exactly_once()
    {
        // A duration counts from a clock finer than the store's milliseconds: the slot stored must
        // not come due again once it fired. The process runner keeps fifty runs quick.
        await using var loop = await LoopDaemon.StartAsync(
            new JsonObject { ["runner"] = "process", ["claude_bin_path"] = Path.Combine(AppContext.BaseDirectory, "claude") },
            new Dictionary<string, string?> { ["HOME"] = Directory.CreateTempSubdirectory("loop-home-").FullName, ["ANTHROPIC_API_KEY"] = "sk-once-test" });
        var channels = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            channels.Add((string)(await loop.CreateChannelAsync(Directory.CreateTempSubdirectory("loop-once-").FullName))["id"]!);
        }
        var tasks = new List<string>();
        for (var i = 0; i < 50; i++)
        {
            var task = await loop.CreateTaskAsync(new { channel_id = channels[i % channels.Count], type = "once", schedule = $"{1 + i % 3}s", prompt = $"[[reply once {i}]]" });
            tasks.Add((string)task["id"]!);
        }

        foreach (var id in tasks)
        {
            var done = await loop.WaitForTaskAsync(id, t => (bool)t["done"]!, TimeSpan.FromSeconds(60));
            Assert.Null(done["next_run_at"]);
            Assert.NotNull(done["last_run_at"]);
        }
        // Each channel has ten tasks: a slot fired twice would be an eleventh run.
        var runs = new List<JsonObject>();
        foreach (var channel in channels)
        {
            runs.AddRange(await loop.WaitForFinishedRunsAsync(channel, 10));
        }
        foreach (var id in tasks)
        {
            var ofTask = runs.Where(r => (string?)r["task_id"] == id).ToList();
            Assert.True(ofTask.Count == 1, $"task {id} ran {ofTask.Count} times: {string.Join(", ", ofTask)}");
            Assert.Equal("succeeded", (string)ofTask[0]["status"]!);
        }
    }

    [Fact]
    public async Task A_once_task_that_ran_shows_as_done_and_only_a_new_schedule_runs_it_again()
    {
        await using var loop = await LoopDaemon.StartAsync(
            new JsonObject { ["runner"] = "process", ["claude_bin_path"] = Path.Combine(AppContext.BaseDirectory, "claude") },
            new Dictionary<string, string?> { ["HOME"] = Directory.CreateTempSubdirectory("loop-home-").FullName, ["ANTHROPIC_API_KEY"] = "sk-once-test" });
        var channel = (string)(await loop.CreateChannelAsync(Directory.CreateTempSubdirectory("loop-once-").FullName))["id"]!;
        var created = await loop.CreateTaskAsync(new { channel_id = channel, type = "once", schedule = "1s", prompt = "[[reply once]]" });
        var id = (string)created["id"]!;
        Assert.False((bool)created["done"]!);

        var ran = await loop.WaitForTaskAsync(id, t => (bool)t["done"]!, TimeSpan.FromSeconds(60));
        Assert.Null(ran["next_run_at"]);
        Assert.Equal("succeeded", (string?)Assert.Single(await loop.WaitForFinishedRunsAsync(channel, 1))["status"]);
        var disabled = await PatchAsync(loop, id, new { enabled = false }, HttpStatusCode.OK);
        Assert.True((bool)disabled["done"]!);

        var refused = await PatchAsync(loop, id, new { enabled = true }, HttpStatusCode.Conflict);
        Assert.Contains("is a once task that has run already", (string)refused["detail"]!);
        Assert.Contains("give it a new schedule", (string)refused["detail"]!);
        var (exit, listed) = await LoopCli.RunAsync(new Dictionary<string, string> { ["LOOP_HOME"] = loop.Home }, "tasks", "list", "--api-url", loop.ApiUrl);
        Assert.Equal(0, exit);
        Assert.Matches($@"{id} .* done ", listed);

        var again = await PatchAsync(loop, id, new { enabled = true, schedule = "1s" }, HttpStatusCode.OK);
        Assert.False((bool)again["done"]!);
        Assert.NotNull(again["next_run_at"]);
        await loop.WaitForFinishedRunsAsync(channel, 2);
        Assert.True((bool)(await loop.WaitForTaskAsync(id, t => (bool)t["done"]!, TimeSpan.FromSeconds(60)))["done"]!);
    }

    [Fact]
    public async Task A_loop_task_reads_its_prompt_file_afresh_at_each_iteration_and_stops_when_it_cannot()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var project = Directory.CreateTempSubdirectory("loop-proj-").FullName;
        // Iteration 1 rewrites the plan; iteration 2 runs the new one, which completes the loop.
        File.WriteAllText(Path.Combine(project, "plan.md"),
            "[[sh printf '%s%sreply plan two <promise>DONE</promise>%s%s' '[' '[' ']' ']' > plan.md]] [[reply first plan done]]");
        AgentUser.GiveToAgents(project);
        var channel = (string)(await loop.CreateChannelAsync(project))["id"]!;

        var task = await loop.CreateTaskAsync(new { channel_id = channel, type = "loop", name = "planner", prompt_file = "plan.md" });
        var id = (string)task["id"]!;
        Assert.Equal("plan.md", (string)task["prompt_file"]!);
        Assert.Equal("", (string)task["prompt"]!);
        var done = await loop.WaitForTaskAsync(id, t => (string)t["loop_state"]! != "running", TimeSpan.FromSeconds(90));
        Assert.Equal("completed", (string)done["loop_state"]!);
        var runs = (await loop.GetArrayAsync($"/api/tasks/{id}/runs")).Reverse().ToList();
        Assert.Equal(2, runs.Count);
        Assert.StartsWith("[[sh printf", (string)runs[0]!["prompt"]!);
        Assert.StartsWith("[[reply plan two <promise>DONE</promise>]]", (string)runs[1]!["prompt"]!);
        Assert.Contains("iteration 2 of at most 10", (string)runs[1]!["prompt"]!);
        Assert.Equal("plan two <promise>DONE</promise>", (string)runs[1]!["reply"]!);

        // Gone: the next cycle stops at once, saying why, and no agent starts.
        File.Delete(Path.Combine(project, "plan.md"));
        await StartAsync(loop, id);
        var stopped = await loop.WaitForTaskAsync(id, t => (string)t["loop_state"]! != "running", TimeSpan.FromSeconds(60));
        Assert.Equal("failed", (string)stopped["loop_state"]!);
        Assert.Contains($"prompt_file plan.md does not exist in {project}", (string)stopped["stop_reason"]!);
        Assert.Null((await loop.GetArrayAsync($"/api/tasks/{id}/runs"))[0]!["container_id"]);

        // A link out of the project is never read into a prompt.
        var secret = Path.Combine(Directory.CreateTempSubdirectory("loop-secret-").FullName, "secret.txt");
        File.WriteAllText(secret, "TOP SECRET");
        File.CreateSymbolicLink(Path.Combine(project, "plan.md"), secret);
        await StartAsync(loop, id);
        var refused = await loop.WaitForTaskAsync(id, t => (string)t["loop_state"]! != "running", TimeSpan.FromSeconds(60));
        Assert.Contains("prompt_file plan.md leads outside the project directory", (string)refused["stop_reason"]!);
        Assert.DoesNotContain("TOP SECRET", (await loop.GetArrayAsync($"/api/tasks/{id}/runs")).ToJsonString());

        // A prompt replaces the file.
        var edited = await PatchAsync(loop, id, new { prompt = "[[reply from a prompt]]" }, HttpStatusCode.OK);
        Assert.Null(edited["prompt_file"]);

        async Task<string> RefusedAsync(object body)
        {
            using var response = await loop.Http.PostAsJsonAsync("/api/tasks", body);
            var problem = await LoopDaemon.ReadObjectAsync(response, HttpStatusCode.BadRequest);
            Assert.Equal("prompt_file", (string)problem["errors"]!.AsObject().Single().Key);
            return (string)problem["detail"]!;
        }
        Assert.Contains("must be a path inside the channel's project directory", await RefusedAsync(new { channel_id = channel, type = "loop", prompt_file = "../plan.md" }));
        Assert.Contains("must be a path inside", await RefusedAsync(new { channel_id = channel, type = "loop", prompt_file = "/etc/passwd" }));
        Assert.Contains("not both", await RefusedAsync(new { channel_id = channel, type = "loop", prompt = "x", prompt_file = "plan.md" }));
    }

    private static async Task StartAsync(LoopDaemon loop, string taskId)
    {
        using var started = await loop.Http.PostAsync($"/api/tasks/{taskId}/start", null);
        Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);
    }

    private static async Task<JsonObject> PatchAsync(LoopDaemon loop, string taskId, object body, HttpStatusCode expected)
    {
        using var response = await loop.Http.PatchAsJsonAsync($"/api/tasks/{taskId}", body);
        var answer = JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsObject();
        Assert.True(response.StatusCode == expected, $"PATCH {taskId}: {(int)response.StatusCode} {answer}");
        return answer;
    }

    [Fact]
    public async Task Bad_task_input_is_refused_with_the_field_and_a_valid_example()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var channel = (string)(await loop.CreateChannelAsync())["id"]!;

        async Task<JsonObject> Refused(object body, string field)
        {
            using var response = await loop.Http.PostAsJsonAsync("/api/tasks", body);
            var problem = await LoopDaemon.ReadObjectAsync(response, HttpStatusCode.BadRequest);
            Assert.True(problem["errors"]!.AsObject().ContainsKey(field), $"{field} not named in {problem}");
            return problem;
        }

        Assert.Contains("*/5 * * * *", (string)(await Refused(new { channel_id = channel, type = "cron", schedule = "every day", prompt = "x" }, "schedule"))["detail"]!);
        Assert.Contains("1h30m", (string)(await Refused(new { channel_id = channel, type = "interval", schedule = "soon", prompt = "x" }, "schedule"))["detail"]!);
        Assert.Contains("past", (string)(await Refused(new { channel_id = channel, type = "once", schedule = "2020-01-01T00:00:00Z", prompt = "x" }, "schedule"))["detail"]!);
        await Refused(new { channel_id = channel, type = "cron", schedule = "0 9 * * *", timezone = "Mars/Olympus", prompt = "x" }, "timezone");
        await Refused(new { channel_id = channel, type = "hourly", schedule = "1h", prompt = "x" }, "type");
        await Refused(new { channel_id = "ch_nope", type = "interval", schedule = "1h", prompt = "x" }, "channel_id");
        await Refused(new { channel_id = channel, type = "interval", schedule = "1h", prompt = "" }, "prompt");
        Assert.Empty(await loop.GetArrayAsync($"/api/tasks?channel_id={channel}"));

        var task = await loop.CreateTaskAsync(new { channel_id = channel, type = "interval", schedule = "1h", prompt = "x" });
        using var badEdit = await loop.Http.PatchAsJsonAsync($"/api/tasks/{task["id"]}", new { schedule = "1 fortnight" });
        Assert.Equal(HttpStatusCode.BadRequest, badEdit.StatusCode);
        Assert.Equal("1h", (string)(await loop.GetObjectAsync($"/api/tasks/{task["id"]}"))["schedule"]!);
    }

    [Fact]
    public async Task Editing_moves_the_timer_at_once_and_deleting_removes_the_task()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var channel = (string)(await loop.CreateChannelAsync())["id"]!;
        var task = await loop.CreateTaskAsync(new { channel_id = channel, type = "interval", schedule = "1h", prompt = "[[reply edited]]" });
        var id = (string)task["id"]!;

        using (var edit = await loop.Http.PatchAsJsonAsync($"/api/tasks/{id}", new { schedule = "2s" }))
        {
            var edited = await LoopDaemon.ReadObjectAsync(edit, HttpStatusCode.OK);
            Assert.True(DateTimeOffset.Parse((string)edited["next_run_at"]!) < DateTimeOffset.UtcNow.AddSeconds(5));
        }
        var run = await loop.WaitForAnyFinishedRunAsync(channel);
        Assert.Contains("edited", (string)run["reply"]!);

        using (var delete = await loop.Http.DeleteAsync($"/api/tasks/{id}"))
        {
            Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        }
        using var gone = await loop.Http.GetAsync($"/api/tasks/{id}");
        Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
    }

    [Fact]
    public async Task Templates_are_listed_and_adding_one_twice_to_a_channel_is_a_no_op()
    {
        await using var loop = await LoopDaemon.StartAsync(new JsonObject
        {
            ["task_templates"] = new JsonArray(new JsonObject
            {
                ["name"] = "daily-summary",
                ["description"] = "Summarise the day",
                ["schedule"] = "0 17 * * *",
                ["type"] = "cron",
                ["prompt"] = "Summarise today's work",
            }),
        });
        var channel = (string)(await loop.CreateChannelAsync())["id"]!;
        var templates = await loop.GetArrayAsync("/api/templates");
        Assert.Equal("daily-summary", (string)templates.Single()!["name"]!);

        using var first = await loop.Http.PostAsync($"/api/channels/{channel}/templates/daily-summary", null);
        var created = await LoopDaemon.ReadObjectAsync(first, HttpStatusCode.Created);
        Assert.Equal("daily-summary", (string)created["template"]!);
        using var second = await loop.Http.PostAsync($"/api/channels/{channel}/templates/daily-summary", null);
        var again = await LoopDaemon.ReadObjectAsync(second, HttpStatusCode.OK);
        Assert.Equal((string)created["id"]!, (string)again["id"]!);
        Assert.Single(await loop.GetArrayAsync($"/api/tasks?channel_id={channel}"));

        using var unknown = await loop.Http.PostAsync($"/api/channels/{channel}/templates/nope", null);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Contains("daily-summary", await unknown.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_channel_token_reaches_only_its_own_channel_and_the_socket_requires_one()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var mine = (string)(await loop.CreateChannelAsync())["id"]!;
        var other = (string)(await loop.CreateChannelAsync())["id"]!;
        var othersTask = await loop.CreateTaskAsync(new { channel_id = other, type = "interval", schedule = "1h", prompt = "x" });
        var token = (string)(await loop.GetObjectAsync($"/api/channels/{mine}/token"))["token"]!;

        using var socket = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var s = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
                await s.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(Path.Combine(loop.Home, "run", "agent", "loop.sock")), ct);
                return new System.Net.Sockets.NetworkStream(s, ownsSocket: true);
            },
        })
        { BaseAddress = new Uri("http://localhost") };

        using (var anonymous = await socket.GetAsync($"/api/tasks?channel_id={mine}"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        }
        socket.DefaultRequestHeaders.Authorization = new("Bearer", token);
        using (var own = await socket.PostAsJsonAsync("/api/tasks", new { channel_id = mine, type = "interval", schedule = "1h", prompt = "mine" }))
        {
            Assert.Equal(HttpStatusCode.Created, own.StatusCode);
        }
        using (var foreign = await socket.GetAsync($"/api/tasks/{othersTask["id"]}"))
        {
            Assert.Equal(HttpStatusCode.Forbidden, foreign.StatusCode);
        }
        using (var foreignCreate = await socket.PostAsJsonAsync("/api/tasks", new { channel_id = other, type = "interval", schedule = "1h", prompt = "x" }))
        {
            Assert.Equal(HttpStatusCode.Forbidden, foreignCreate.StatusCode);
        }
        var listed = await (await socket.GetAsync("/api/tasks")).Content.ReadFromJsonAsync<JsonArray>();
        Assert.All(listed!, t => Assert.Equal(mine, (string)t!["channel_id"]!));
        using (var forged = new HttpRequestMessage(HttpMethod.Get, "/api/tasks"))
        {
            forged.Headers.Authorization = new("Bearer", token[..^2] + "xx");
            using var response = await socket.SendAsync(forged);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        }
    }
}
