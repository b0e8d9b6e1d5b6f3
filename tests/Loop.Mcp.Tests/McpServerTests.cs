namespace Loop.Mcp.Tests;

using Loop.Testing;

using System.Text.Json;
using Loop.Client;
using ModelContextProtocol;

/// <summary><c>loop mcp</c> spawned over stdio by the SDK's client, against a running <c>loop serve</c>.</summary>
[Collection(DaemonCollection.Name)]
public sealed class McpServerTests(DaemonFixture fixture)
{
    private LoopDaemon Loop => fixture.Daemon;

    private async Task<(string ChannelId, LoopMcpClient Mcp)> StartForNewChannelAsync()
    {
        var channel = await Loop.Api.EnsureChannelAsync(AgentUser.CreateDir("loop-proj-"));
        var mcp = await LoopMcpClient.StartAsync("--channel-id", channel.Id, "--api-url", Loop.ApiUrl);
        return (channel.Id, mcp);
    }

    [Fact]
    public async Task The_server_lists_its_tools_with_descriptions_and_schemas()
    {
        var (_, mcp) = await StartForNewChannelAsync();
        await using var _ = mcp;

        var tools = (await mcp.ListToolsAsync()).ToDictionary(t => t.Name);
        Assert.Equal(
            ["cancel_task", "edit_task", "list_task_runs", "list_tasks", "schedule_task", "show_task", "start_loop", "stop_loop", "toggle_task"],
            tools.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("loop", mcp.Client.ServerInfo?.Name);

        var schedule = tools["schedule_task"].ProtocolTool;
        foreach (var example in new[] { "*/5 * * * *", "90s", "1h30m", "10m", "2026-12-01T09:00:00Z" })
        {
            Assert.Contains(example, schedule.Description);
        }
        var schema = schedule.InputSchema;
        Assert.Equal("object", schema.GetProperty("type").GetString());
        var properties = schema.GetProperty("properties");
        Assert.Equal(
            ["context", "max_iterations", "name", "prompt", "prompt_file", "schedule", "timezone", "type"],
            properties.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal));
        Assert.Equal(["schedule", "type"], Required(schema));
        Assert.Contains("cron", properties.GetProperty("type").GetProperty("description").GetString());
        Assert.Contains("Europe/Berlin", properties.GetProperty("timezone").GetProperty("description").GetString());
        Assert.Contains("integer", properties.GetProperty("max_iterations").GetProperty("type").ToString());
        Assert.Equal(["cron", "interval", "once", "loop"], properties.GetProperty("type").GetProperty("enum").EnumerateArray().Select(e => e.GetString()));

        foreach (var name in new[] { "show_task", "cancel_task", "toggle_task", "edit_task", "list_task_runs", "start_loop", "stop_loop" })
        {
            var toolSchema = tools[name].ProtocolTool.InputSchema;
            Assert.Equal(["task_id"], Required(toolSchema));
            Assert.False(string.IsNullOrWhiteSpace(tools[name].Description));
        }
        Assert.Contains("boolean", tools["toggle_task"].ProtocolTool.InputSchema.GetProperty("properties").GetProperty("enabled").GetProperty("type").ToString());
        Assert.Contains("integer", tools["list_task_runs"].ProtocolTool.InputSchema.GetProperty("properties").GetProperty("limit").GetProperty("type").ToString());
        Assert.Equal(
            ["context", "max_iterations", "name", "prompt", "prompt_file", "schedule", "task_id", "timezone", "type"],
            tools["edit_task"].ProtocolTool.InputSchema.GetProperty("properties").EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal));
        Assert.Empty(Required(tools["list_tasks"].ProtocolTool.InputSchema));
        Assert.True(tools["list_tasks"].ProtocolTool.Annotations?.ReadOnlyHint);
        Assert.True(tools["cancel_task"].ProtocolTool.Annotations?.DestructiveHint);
    }

    [Fact]
    public async Task Edit_task_changes_the_name_context_and_max_iterations()
    {
        var (_, mcp) = await StartForNewChannelAsync();
        await using var _ = mcp;
        var scheduled = await mcp.CallAsync("schedule_task", new { schedule = "0 9 * * *", prompt = "Check the deploys", type = "cron", name = "deploys" });
        var taskId = scheduled.Json.GetProperty("id").GetString()!;

        var edited = await mcp.CallAsync("edit_task", new { task_id = taskId, name = "deploy-watch", context = "channel", max_iterations = 4 });

        Assert.False(edited.IsError, edited.Text);
        var stored = await Loop.Api.GetTaskAsync(taskId);
        Assert.Equal(("deploy-watch", "channel", 4, "0 9 * * *"), (stored.Name, stored.Context, stored.MaxIterations, stored.Schedule));
        var nothing = await mcp.CallAsync("edit_task", new { task_id = taskId });
        Assert.True(nothing.IsError);
        Assert.Contains("name, context, max_iterations", nothing.Text);

        // A loop's plan as a file of the project, and back to a prompt.
        var planned = await mcp.CallAsync("schedule_task", new { schedule = "", type = "loop", prompt_file = "PROMPT_plan.md" });
        Assert.False(planned.IsError, planned.Text);
        var loopId = planned.Json.GetProperty("id").GetString()!;
        Assert.Equal(("PROMPT_plan.md", ""), ((await Loop.Api.GetTaskAsync(loopId)).PromptFile, (await Loop.Api.GetTaskAsync(loopId)).Prompt));
        Assert.False((await mcp.CallAsync("edit_task", new { task_id = loopId, prompt = "Plan the next step" })).IsError);
        Assert.Equal((null, "Plan the next step"), ((await Loop.Api.GetTaskAsync(loopId)).PromptFile, (await Loop.Api.GetTaskAsync(loopId)).Prompt));
        var neither = await mcp.CallAsync("schedule_task", new { schedule = "10m", type = "once" });
        Assert.True(neither.IsError);
        Assert.Contains("prompt", neither.Text);
    }

    [Fact]
    public async Task Each_tool_works_end_to_end_schedule_list_show_edit_toggle_runs_cancel()
    {
        var (channelId, mcp) = await StartForNewChannelAsync();
        await using var _ = mcp;

        var scheduled = await mcp.CallAsync("schedule_task", new
        {
            schedule = "0 9 * * *",
            prompt = "Summarize yesterday's commits",
            type = "cron",
            timezone = "Europe/Berlin",
            name = "daily-summary",
        });
        Assert.False(scheduled.IsError, scheduled.Text);
        Assert.StartsWith("Scheduled task task_", scheduled.Text);
        var taskId = scheduled.Json.GetProperty("id").GetString()!;
        Assert.Equal(channelId, scheduled.Json.GetProperty("channel_id").GetString());

        // What the daemon stored is what was asked for.
        var stored = await Loop.Api.GetTaskAsync(taskId);
        Assert.Equal(("cron", "0 9 * * *", "Europe/Berlin", "daily-summary", true), (stored.Type, stored.Schedule, stored.Timezone, stored.Name, stored.Enabled));
        Assert.Equal("Summarize yesterday's commits", stored.Prompt);
        Assert.Equal("isolated", stored.Context);
        var berlinNine = TimeZoneInfo.ConvertTime(stored.NextRunAt!.Value, TimeZoneInfo.FindSystemTimeZoneById("Europe/Berlin"));
        Assert.Equal((9, 0), (berlinNine.Hour, berlinNine.Minute));

        var list = await mcp.CallAsync("list_tasks");
        Assert.False(list.IsError, list.Text);
        Assert.Contains("1 task(s)", list.Text);
        Assert.Contains(taskId, list.Text);
        Assert.Contains("daily-summary", list.Text);

        var show = await mcp.CallAsync("show_task", new { task_id = taskId });
        Assert.False(show.IsError, show.Text);
        Assert.Contains("Europe/Berlin", show.Text);
        Assert.Contains("Summarize yesterday's commits", show.Text);
        Assert.Equal(taskId, show.Json.GetProperty("id").GetString());

        var before = DateTimeOffset.UtcNow;
        var edited = await mcp.CallAsync("edit_task", new { task_id = taskId, type = "interval", schedule = "30m", prompt = "Check the build" });
        Assert.False(edited.IsError, edited.Text);
        stored = await Loop.Api.GetTaskAsync(taskId);
        Assert.Equal(("interval", "30m", "Check the build"), (stored.Type, stored.Schedule, stored.Prompt));
        // The timer moved at once: the next run is about 30 minutes from the edit.
        Assert.InRange(stored.NextRunAt!.Value, before.AddMinutes(29), DateTimeOffset.UtcNow.AddMinutes(31));

        var off = await mcp.CallAsync("toggle_task", new { task_id = taskId });
        Assert.False(off.IsError, off.Text);
        Assert.Contains("now disabled", off.Text);
        Assert.False((await Loop.Api.GetTaskAsync(taskId)).Enabled);
        var on = await mcp.CallAsync("toggle_task", new { task_id = taskId });
        Assert.Contains("now enabled", on.Text);
        Assert.True((await Loop.Api.GetTaskAsync(taskId)).Enabled);
        var stillOn = await mcp.CallAsync("toggle_task", new { task_id = taskId, enabled = true });
        Assert.Contains("now enabled", stillOn.Text);
        Assert.True((await Loop.Api.GetTaskAsync(taskId)).Enabled);

        var runs = await mcp.CallAsync("list_task_runs", new { task_id = taskId });
        Assert.False(runs.IsError, runs.Text);
        Assert.Contains("has not run yet", runs.Text);

        var cancelled = await mcp.CallAsync("cancel_task", new { task_id = taskId });
        Assert.False(cancelled.IsError, cancelled.Text);
        Assert.Contains($"Cancelled task {taskId}", cancelled.Text);
        var gone = await Assert.ThrowsAsync<LoopApiException>(() => Loop.Api.GetTaskAsync(taskId));
        Assert.Equal(404, gone.StatusCode);
        Assert.Contains("No tasks", (await mcp.CallAsync("list_tasks")).Text);
    }

    [Fact]
    public async Task A_once_task_runs_and_list_task_runs_shows_the_run()
    {
        var (_, mcp) = await StartForNewChannelAsync();
        await using var _ = mcp;

        var scheduled = await mcp.CallAsync("schedule_task", new { schedule = "1s", prompt = "[[reply ran on schedule]]", type = "once" });
        Assert.False(scheduled.IsError, scheduled.Text);
        var taskId = scheduled.Json.GetProperty("id").GetString()!;

        var deadline = DateTime.UtcNow.AddSeconds(90);
        ToolResult runs;
        while (true)
        {
            runs = await mcp.CallAsync("list_task_runs", new { task_id = taskId, limit = 5 });
            Assert.False(runs.IsError, runs.Text);
            if (runs.Text.Contains(" succeeded ") || runs.Text.Contains(" failed ") || DateTime.UtcNow > deadline)
            {
                break;
            }
            await Task.Delay(500);
        }
        Assert.Contains("1 run(s)", runs.Text);
        Assert.Contains(" succeeded ", runs.Text);
        Assert.Contains("reply: ran on schedule", runs.Text);
    }

    [Fact]
    public async Task A_loop_task_can_be_scheduled_and_stopped()
    {
        var (_, mcp) = await StartForNewChannelAsync();
        await using var _ = mcp;

        // Disabled at creation through the API is not a tool option; a long-running loop is stopped instead.
        var scheduled = await mcp.CallAsync("schedule_task", new { schedule = "", prompt = "[[sleep 30]] keep going", type = "loop", max_iterations = 3 });
        Assert.False(scheduled.IsError, scheduled.Text);
        var taskId = scheduled.Json.GetProperty("id").GetString()!;
        Assert.Equal(3, scheduled.Json.GetProperty("max_iterations").GetInt32());

        var stopped = await mcp.CallAsync("stop_loop", new { task_id = taskId });
        Assert.False(stopped.IsError, stopped.Text);
        Assert.Contains($"Stopped loop task {taskId}", stopped.Text);
        var state = (await Loop.Api.GetTaskAsync(taskId)).LoopState;
        Assert.NotEqual("running", state);
    }

    [Fact]
    public async Task Bad_arguments_come_back_as_tool_errors_with_the_APIs_message()
    {
        var (channelId, mcp) = await StartForNewChannelAsync();
        await using var _ = mcp;

        var badCron = await mcp.CallAsync("schedule_task", new { schedule = "every day at nine", prompt = "x", type = "cron" });
        Assert.True(badCron.IsError, badCron.Text);
        var apiError = await Assert.ThrowsAsync<LoopApiException>(() =>
            Loop.Api.CreateTaskAsync(new CreateTaskRequest(channelId, "cron", "every day at nine", "x")));
        Assert.Equal(400, apiError.StatusCode);
        Assert.Contains(apiError.Message, badCron.Text);

        var badInterval = await mcp.CallAsync("schedule_task", new { schedule = "soon", prompt = "x", type = "interval" });
        Assert.True(badInterval.IsError, badInterval.Text);
        Assert.Contains("schedule", badInterval.Text, StringComparison.OrdinalIgnoreCase);

        var badType = await mcp.CallAsync("schedule_task", new { schedule = "5m", prompt = "x", type = "weekly" });
        Assert.True(badType.IsError, badType.Text);
        Assert.Contains("cron, interval, once, loop", badType.Text);

        var unknown = await mcp.CallAsync("show_task", new { task_id = "task_does_not_exist" });
        Assert.True(unknown.IsError, unknown.Text);
        var notFound = await Assert.ThrowsAsync<LoopApiException>(() => Loop.Api.GetTaskAsync("task_does_not_exist"));
        Assert.Equal(404, notFound.StatusCode);
        Assert.Contains(notFound.Message, unknown.Text);
        Assert.True((await mcp.CallAsync("cancel_task", new { task_id = "task_does_not_exist" })).IsError);
        Assert.True((await mcp.CallAsync("toggle_task", new { task_id = "task_does_not_exist" })).IsError);

        var nothing = await mcp.CallAsync("edit_task", new { task_id = "task_does_not_exist" });
        Assert.True(nothing.IsError, nothing.Text);
        Assert.Contains("nothing to change", nothing.Text);

        // Arguments that do not fit the schema are tool errors that say which.
        var missing = await mcp.CallAsync("show_task", new { });
        Assert.True(missing.IsError, missing.Text);
        Assert.Contains("task_id", missing.Text);
        var wrongType = await mcp.CallAsync("toggle_task", new { task_id = "task_x", enabled = "maybe" });
        Assert.True(wrongType.IsError, wrongType.Text);
        Assert.Contains("invalid arguments for toggle_task", wrongType.Text);

        // The server is still up and serving.
        var list = await mcp.CallAsync("list_tasks");
        Assert.False(list.IsError, list.Text);
        Assert.Contains("No tasks", list.Text);
    }

    [Fact]
    public async Task Task_type_and_context_are_the_same_words_with_the_same_errors_as_in_the_API()
    {
        var (channelId, mcp) = await StartForNewChannelAsync();
        await using var _ = mcp;

        var badType = await mcp.CallAsync("schedule_task", new { schedule = "5m", prompt = "x", type = "weekly" });
        var apiType = await Assert.ThrowsAsync<LoopApiException>(() => Loop.Api.CreateTaskAsync(new CreateTaskRequest(channelId, "weekly", "5m", "x")));
        Assert.True(badType.IsError, badType.Text);
        Assert.Equal(apiType.Message, badType.Text);

        var badContext = await mcp.CallAsync("schedule_task", new { schedule = "1h", prompt = "x", type = "interval", context = "shared" });
        var apiContext = await Assert.ThrowsAsync<LoopApiException>(() =>
            Loop.Api.CreateTaskAsync(new CreateTaskRequest(channelId, "interval", "1h", "x") { Context = "shared" }));
        Assert.True(badContext.IsError, badContext.Text);
        Assert.Equal(apiContext.Message, badContext.Text);

        var badEdit = await mcp.CallAsync("edit_task", new { task_id = (await Loop.Api.CreateTaskAsync(new CreateTaskRequest(channelId, "interval", "1h", "x"))).Id, type = "hourly" });
        Assert.True(badEdit.IsError, badEdit.Text);
        Assert.Contains("type 'hourly' is not one of cron, interval, once, loop", badEdit.Text);

        // Both read the words in any case.
        var viaMcp = await mcp.CallAsync("schedule_task", new { schedule = "1h", prompt = "x", type = "Interval", context = "Channel" });
        Assert.False(viaMcp.IsError, viaMcp.Text);
        var viaApi = await Loop.Api.CreateTaskAsync(new CreateTaskRequest(channelId, "Interval", "1h", "x") { Context = "Channel" });
        foreach (var task in new[] { await Loop.Api.GetTaskAsync(viaMcp.Json.GetProperty("id").GetString()!), viaApi })
        {
            Assert.Equal(("interval", "channel"), (task.Type, task.Context));
        }
    }

    [Fact]
    public async Task With_dir_the_server_registers_the_directorys_channel()
    {
        var project = AgentUser.CreateDir("loop-dir-");
        await using var mcp = await LoopMcpClient.StartAsync("--dir", project, "--api-url", Loop.ApiUrl);

        var scheduled = await mcp.CallAsync("schedule_task", new { schedule = DateTime.UtcNow.AddDays(2).ToString("yyyy-MM-ddT09:00:00Z", System.Globalization.CultureInfo.InvariantCulture), prompt = "ship it", type = "once" });
        Assert.False(scheduled.IsError, scheduled.Text);
        var channelId = scheduled.Json.GetProperty("channel_id").GetString()!;

        var channel = await Loop.Api.GetChannelAsync(channelId);
        Assert.Equal(project, channel.DirPath?.TrimEnd('/'));
        // Registering the directory again finds the same channel.
        Assert.Equal(channelId, (await Loop.Api.EnsureChannelAsync(project)).Id);
        Assert.Contains(scheduled.Json.GetProperty("id").GetString()!, (await mcp.CallAsync("list_tasks")).Text);
    }

    [Fact]
    public async Task A_server_with_a_channel_token_is_refused_on_another_channels_task()
    {
        var a = await Loop.Api.EnsureChannelAsync(AgentUser.CreateDir("loop-a-"));
        var b = await Loop.Api.EnsureChannelAsync(AgentUser.CreateDir("loop-b-"));
        var bTask = await Loop.Api.CreateTaskAsync(new CreateTaskRequest(b.Id, "interval", "1h", "B's work"));
        var aToken = await Loop.Api.GetChannelTokenAsync(a.Id);

        // What the API itself answers A's token about B's task: the tools must pass this on.
        using var scoped = new LoopApiClient(Loop.SocketUrl, aToken);
        var forbidden = await Assert.ThrowsAsync<LoopApiException>(() => scoped.GetTaskAsync(bTask.Id));
        Assert.Equal(403, forbidden.StatusCode);
        var forbiddenCreate = await Assert.ThrowsAsync<LoopApiException>(() => scoped.CreateTaskAsync(new CreateTaskRequest(b.Id, "once", "10m", "sneaky")));
        Assert.Equal(403, forbiddenCreate.StatusCode);

        // As inside A's container: the unix socket, A's token in the environment.
        var env = new Dictionary<string, string?> { ["LOOP_CHANNEL_TOKEN"] = aToken };
        await using (var mcp = await LoopMcpClient.StartAsync(env, "--channel-id", a.Id, "--api-url", Loop.SocketUrl))
        {
            var own = await mcp.CallAsync("schedule_task", new { schedule = "10m", prompt = "follow up", type = "once" });
            Assert.False(own.IsError, own.Text);
            Assert.Equal(a.Id, own.Json.GetProperty("channel_id").GetString());

            foreach (var (tool, args) in new (string, object)[]
            {
                ("show_task", new { task_id = bTask.Id }),
                ("cancel_task", new { task_id = bTask.Id }),
                ("toggle_task", new { task_id = bTask.Id }),
                ("edit_task", new { task_id = bTask.Id, prompt = "hijacked" }),
                ("list_task_runs", new { task_id = bTask.Id }),
            })
            {
                var refused = await mcp.CallAsync(tool, args);
                Assert.True(refused.IsError, $"{tool}: {refused.Text}");
                Assert.Equal(forbidden.Message, refused.Text);
            }
            var list = await mcp.CallAsync("list_tasks");
            Assert.DoesNotContain(bTask.Id, list.Text);
        }

        // Pointed at B but holding A's token: the API itself refuses.
        await using (var mcp = await LoopMcpClient.StartAsync(env, "--channel-id", b.Id, "--api-url", Loop.SocketUrl))
        {
            var create = await mcp.CallAsync("schedule_task", new { schedule = "10m", prompt = "sneaky", type = "once" });
            Assert.True(create.IsError, create.Text);
            Assert.Equal(forbiddenCreate.Message, create.Text);
            var show = await mcp.CallAsync("show_task", new { task_id = bTask.Id });
            Assert.True(show.IsError, show.Text);
            Assert.Equal(forbidden.Message, show.Text);
            var list = await mcp.CallAsync("list_tasks");
            Assert.True(list.IsError || !list.Text.Contains(bTask.Id), list.Text);
        }

        // B's task is untouched.
        var after = await Loop.Api.GetTaskAsync(bTask.Id);
        Assert.Equal(("B's work", true), (after.Prompt, after.Enabled));
        Assert.Equal([bTask.Id], (await Loop.Api.ListTasksAsync(b.Id)).Select(t => t.Id));

        // A token the daemon does not know is refused outright.
        using var noToken = new LoopApiClient(Loop.SocketUrl, "not-a-token");
        Assert.Equal(401, (await Assert.ThrowsAsync<LoopApiException>(() => noToken.ListTasksAsync(a.Id))).StatusCode);
    }

    private static string[] Required(JsonElement schema) =>
        schema.TryGetProperty("required", out var required)
            ? required.EnumerateArray().Select(e => e.GetString()!).Order(StringComparer.Ordinal).ToArray()
            : [];
}

/// <summary>Tests that need no daemon.</summary>
public sealed class McpServerWithoutDaemonTests
{
    [Fact]
    public async Task An_unreachable_daemon_is_a_tool_error_that_says_how_to_start_it()
    {
        var url = $"http://127.0.0.1:{LoopDaemon.FreePort()}";
        await using var mcp = await LoopMcpClient.StartAsync("--channel-id", "ch_nowhere", "--api-url", url);

        Assert.Equal(9, (await mcp.ListToolsAsync()).Count);
        var list = await mcp.CallAsync("list_tasks");
        Assert.True(list.IsError, list.Text);
        Assert.Contains($"not reachable at {url}", list.Text);
        Assert.Contains("loop serve", list.Text);
        // Still alive after the error.
        Assert.True((await mcp.CallAsync("show_task", new { task_id = "task_x" })).IsError);
    }

    [Fact]
    public async Task An_unknown_tool_is_a_protocol_error_and_one_line_on_stderr()
    {
        await using var mcp = await LoopMcpClient.StartAsync("--channel-id", "ch_x", "--api-url", $"http://127.0.0.1:{LoopDaemon.FreePort()}");

        var error = await Assert.ThrowsAsync<McpProtocolException>(() => mcp.CallAsync("no_such_tool"));

        Assert.Contains("Unknown tool: 'no_such_tool'", error.Message);
        await Eventually.WaitAsync(() => mcp.Stderr.Contains("tools/call no_such_tool failed: Unknown tool", StringComparison.Ordinal), "the failure on stderr");
        Assert.DoesNotContain("   at ", mcp.Stderr);
        // Still serving.
        Assert.Equal(9, (await mcp.ListToolsAsync()).Count);
    }

    [Fact]
    public async Task Stdout_carries_only_the_protocol()
    {
        // Every line the server writes to stdout must be a JSON-RPC message; logs go to stderr.
        var start = new System.Diagnostics.ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { LoopCli.LoopDll, "mcp", "--channel-id", "ch_x", "--api-url", $"http://127.0.0.1:{LoopDaemon.FreePort()}" })
        {
            start.ArgumentList.Add(arg);
        }
        using var process = System.Diagnostics.Process.Start(start)!;
        await process.StandardInput.WriteLineAsync("""{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}""");
        await process.StandardInput.WriteLineAsync("""{"jsonrpc":"2.0","method":"notifications/initialized"}""");
        await process.StandardInput.WriteLineAsync("""{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list_tasks","arguments":{}}}""");
        await process.StandardInput.FlushAsync();
        var lines = new List<string>();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (lines.Count < 2)
        {
            var line = await process.StandardOutput.ReadLineAsync(timeout.Token);
            if (line is null)
            {
                break;
            }
            lines.Add(line);
        }
        process.StandardInput.Close();
        await process.WaitForExitAsync(timeout.Token);
        var stderr = await process.StandardError.ReadToEndAsync();

        Assert.Equal(2, lines.Count);
        foreach (var line in lines)
        {
            using var message = JsonDocument.Parse(line);
            Assert.Equal("2.0", message.RootElement.GetProperty("jsonrpc").GetString());
        }
        Assert.Contains("\"isError\":true", lines[1]);
        Assert.Contains("loop MCP server", stderr);
        Assert.Equal(0, process.ExitCode);
    }
}
