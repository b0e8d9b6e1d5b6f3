namespace Loop.Mcp;

using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using Loop.Client;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

/// <summary>The MCP tools. Each answers with a short readable text (and the task's JSON where one
/// task is concerned); every failure becomes an MCP tool error carrying the daemon's message.</summary>
[McpServerToolType]
public sealed class TaskTools(LoopApiClient api, ChannelScope channel)
{
    private const string ScheduleFormats =
        "Format by type: cron = 5-field cron \"minute hour day-of-month month day-of-week\" (optionally a 6th seconds field first), " +
        "e.g. \"*/5 * * * *\" (every 5 minutes) or \"0 9 * * 1-5\" (09:00 on weekdays); " +
        "interval = a duration, e.g. \"90s\", \"5m\", \"1h30m\"; " +
        "once = a delay from now, e.g. \"10m\", or an ISO-8601 instant in the future, e.g. \"2026-12-01T09:00:00Z\"; " +
        "loop = \"\" (not used). Cron and interval tasks may not run more often than the daemon's min_task_interval_sec " +
        "(60 seconds unless configured otherwise): a shorter interval, or a cron that fires closer together, is refused.";

    [McpServerTool(Name = "schedule_task", Title = "Schedule a task", Destructive = false, Idempotent = false, OpenWorld = false)]
    [Description(
        "Schedule a prompt for Loop to run later in this channel, as its own agent run. " +
        "Types: cron (recurring on a cron schedule, in `timezone`, default UTC), interval (recurring every duration), " +
        "once (a single run after a delay or at an instant), loop (an autonomous task: runs the prompt now, feeds each " +
        "iteration's output into the next, and stops when the output contains <promise>DONE</promise>, after max_iterations, " +
        "or when stopped). " + ScheduleFormats + " Returns the new task with its id and next run time.")]
    public Task<CallToolResult> ScheduleTask(
        [Description("When to run; see the formats in the tool description. Examples: \"*/5 * * * *\", \"1h30m\", \"10m\", \"2026-12-01T09:00:00Z\"; \"\" for type loop.")]
        string schedule,
        [Description("One of: cron, interval, once, loop.")]
        [AllowedValues("cron", "interval", "once", "loop")]
        string type,
        [Description("What the agent should do when the task runs, written as a complete instruction, e.g. \"Summarize yesterday's commits and post the summary\". Give this or prompt_file.")]
        string? prompt = null,
        [Description("Instead of prompt: a file of the project (a path relative to it, e.g. \"PROMPT_plan.md\") read afresh when each run starts, so a person can edit the plan while a loop runs.")]
        string? prompt_file = null,
        [Description("IANA time zone for a cron schedule, e.g. \"Europe/Berlin\" or \"America/New_York\". Default UTC.")]
        string? timezone = null,
        [Description("Which conversation the runs use: \"isolated\" (default: a session of the task's own, so runs don't clutter the chat) or \"channel\" (the chat's own session, so the run sees and continues the conversation).")]
        string? context = null,
        [Description("A short name for the task, e.g. \"daily-summary\". Default: derived by Loop.")]
        string? name = null,
        [Description("Loop tasks only: the most iterations in one cycle (default 10).")]
        int? max_iterations = null,
        CancellationToken cancellationToken = default) =>
        Guard(async () =>
        {
            var channelId = await channel.GetChannelIdAsync(cancellationToken);
            var task = await api.CreateTaskAsync(
                new CreateTaskRequest(channelId, type, schedule ?? "", Blank(prompt))
                {
                    PromptFile = Blank(prompt_file),
                    Timezone = Blank(timezone),
                    Context = Blank(context),
                    Name = Blank(name),
                    MaxIterations = max_iterations,
                },
                cancellationToken);
            return $"Scheduled task {LoopText.Line(task)}\n\n{LoopText.Json(task)}";
        });

    [McpServerTool(Name = "list_tasks", Title = "List tasks", ReadOnly = true, Idempotent = true, OpenWorld = false)]
    [Description("List this channel's scheduled and loop tasks: id, name, schedule, enabled or not, next run, and the start of the prompt. Use the ids with the other task tools.")]
    public Task<CallToolResult> ListTasks(CancellationToken cancellationToken = default) =>
        Guard(async () =>
        {
            var channelId = await channel.GetChannelIdAsync(cancellationToken);
            var tasks = await api.ListTasksAsync(channelId, cancellationToken);
            if (tasks.Count == 0)
            {
                return $"No tasks in channel {channelId}.";
            }
            var lines = tasks.Select(t => "- " + LoopText.Line(t));
            return $"{tasks.Count} task(s) in channel {channelId}:\n{string.Join('\n', lines)}";
        });

    [McpServerTool(Name = "show_task", Title = "Show a task", ReadOnly = true, Idempotent = true, OpenWorld = false)]
    [Description("Show everything about one task of this channel: schedule, time zone, enabled, next and last run, loop state, full prompt.")]
    public Task<CallToolResult> ShowTask(
        [Description("The task's id, as returned by schedule_task or list_tasks, e.g. \"task_01JD...\".")]
        string task_id,
        CancellationToken cancellationToken = default) =>
        Guard(async () =>
        {
            var task = await channel.GetOwnTaskAsync(Required(task_id, "task_id"), cancellationToken);
            return $"{LoopText.Details(task)}\n\n{LoopText.Json(task)}";
        });

    [McpServerTool(Name = "cancel_task", Title = "Cancel a task", Destructive = true, Idempotent = false, OpenWorld = false)]
    [Description("Cancel a task of this channel for good: it is deleted and will not run again (its past runs stay in the history). To pause a task instead, use toggle_task.")]
    public Task<CallToolResult> CancelTask(
        [Description("The id of the task to delete, e.g. \"task_01JD...\".")]
        string task_id,
        CancellationToken cancellationToken = default) =>
        Guard(async () =>
        {
            var task = await channel.GetOwnTaskAsync(Required(task_id, "task_id"), cancellationToken);
            await api.DeleteTaskAsync(task.Id, cancellationToken);
            return $"Cancelled task {task.Id} \"{task.Name}\" ({LoopText.Schedule(task)}); it will not run again.";
        });

    [McpServerTool(Name = "toggle_task", Title = "Enable or disable a task", Destructive = false, OpenWorld = false)]
    [Description("Enable or disable a task of this channel. Without `enabled` it flips the current state. A disabled task keeps its settings but does not run; enabling it schedules its next run from now.")]
    public Task<CallToolResult> ToggleTask(
        [Description("The task's id, e.g. \"task_01JD...\".")]
        string task_id,
        [Description("true to enable, false to disable; leave out to flip the current state.")]
        bool? enabled = null,
        CancellationToken cancellationToken = default) =>
        Guard(async () =>
        {
            var current = await channel.GetOwnTaskAsync(Required(task_id, "task_id"), cancellationToken);
            var task = await api.UpdateTaskAsync(current.Id, new UpdateTaskRequest { Enabled = enabled ?? !current.Enabled }, cancellationToken);
            return $"Task is now {(task.Enabled ? "enabled" : "disabled")}: {LoopText.Line(task)}\n\n{LoopText.Json(task)}";
        });

    [McpServerTool(Name = "edit_task", Title = "Edit a task", Destructive = false, OpenWorld = false)]
    [Description("Change a task of this channel: its schedule, type, prompt (or prompt_file), time zone, name, context or max_iterations (give at least one). The next run moves at once. " + ScheduleFormats)]
    public Task<CallToolResult> EditTask(
        [Description("The task's id, e.g. \"task_01JD...\".")]
        string task_id,
        [Description("New schedule in the format of the (new) type, e.g. \"0 9 * * *\", \"30m\", \"2026-12-01T09:00:00Z\".")]
        string? schedule = null,
        [Description("New type: cron, interval, once or loop. Usually changed together with schedule.")]
        string? type = null,
        [Description("New prompt: what the agent should do when the task runs (replaces a prompt_file).")]
        string? prompt = null,
        [Description("New prompt file: a file of the project read afresh at each run, e.g. \"PROMPT_build.md\" (replaces the prompt).")]
        string? prompt_file = null,
        [Description("New IANA time zone for a cron schedule, e.g. \"Europe/Berlin\".")]
        string? timezone = null,
        [Description("New short name, e.g. \"daily-summary\".")]
        string? name = null,
        [Description("New context: isolated (the task's own session) or channel (the chat's session).")]
        string? context = null,
        [Description("Loop tasks: the most iterations per cycle.")]
        int? max_iterations = null,
        CancellationToken cancellationToken = default) =>
        Guard(async () =>
        {
            var update = new UpdateTaskRequest
            {
                Schedule = Blank(schedule),
                Type = Blank(type),
                Prompt = Blank(prompt),
                PromptFile = Blank(prompt_file),
                Timezone = Blank(timezone),
                Name = Blank(name),
                Context = Blank(context),
                MaxIterations = max_iterations,
            };
            if (update == new UpdateTaskRequest())
            {
                throw new ArgumentException("nothing to change: give at least one of schedule, type, prompt, prompt_file, timezone, name, context, max_iterations");
            }
            var current = await channel.GetOwnTaskAsync(Required(task_id, "task_id"), cancellationToken);
            var task = await api.UpdateTaskAsync(current.Id, update, cancellationToken);
            return $"Updated task {LoopText.Line(task)}\n\n{LoopText.Json(task)}";
        });

    [McpServerTool(Name = "list_task_runs", Title = "List a task's runs", ReadOnly = true, Idempotent = true, OpenWorld = false)]
    [Description("List the recent runs of a task of this channel, newest first: status (queued, running, succeeded, failed, timed_out, cancelled), when, how long, cost, and the start of the reply or error.")]
    public Task<CallToolResult> ListTaskRuns(
        [Description("The task's id, e.g. \"task_01JD...\".")]
        string task_id,
        [Description("How many runs to return, 1 to 100 (default 10).")]
        int? limit = null,
        CancellationToken cancellationToken = default) =>
        Guard(async () =>
        {
            var task = await channel.GetOwnTaskAsync(Required(task_id, "task_id"), cancellationToken);
            var runs = await api.ListTaskRunsAsync(task.Id, Math.Clamp(limit ?? 10, 1, 100), cancellationToken: cancellationToken);
            if (runs.Count == 0)
            {
                return $"Task {task.Id} \"{task.Name}\" has not run yet" + (task.NextRunAt is { } next ? $"; next run {LoopText.Instant(next)}." : ".");
            }
            return $"{runs.Count} run(s) of task {task.Id} \"{task.Name}\", newest first:\n{string.Join('\n', runs.Select(r => "- " + LoopText.RunLine(r)))}";
        });

    [McpServerTool(Name = "start_loop", Title = "Start a loop task", Destructive = false, OpenWorld = false)]
    [Description("Start a new cycle of a loop task of this channel (it iterates until its completion promise, max_iterations, or stop_loop). Fails if a cycle is already running.")]
    public Task<CallToolResult> StartLoop(
        [Description("The loop task's id, e.g. \"task_01JD...\".")]
        string task_id,
        CancellationToken cancellationToken = default) =>
        Guard(async () =>
        {
            var current = await channel.GetOwnTaskAsync(Required(task_id, "task_id"), cancellationToken);
            var task = await api.StartTaskAsync(current.Id, cancellationToken);
            return $"Started loop task {LoopText.Line(task)}";
        });

    [McpServerTool(Name = "stop_loop", Title = "Stop a loop task", Destructive = false, OpenWorld = false)]
    [Description("Stop the running cycle of a loop task of this channel; the task stays and can be started again with start_loop.")]
    public Task<CallToolResult> StopLoop(
        [Description("The loop task's id, e.g. \"task_01JD...\".")]
        string task_id,
        CancellationToken cancellationToken = default) =>
        Guard(async () =>
        {
            var current = await channel.GetOwnTaskAsync(Required(task_id, "task_id"), cancellationToken);
            var task = await api.StopTaskAsync(current.Id, cancellationToken);
            return $"Stopped loop task {LoopText.Line(task)}";
        });

    /// <summary>Runs a tool body; what went wrong becomes a tool error (isError) the agent can read
    /// and act on, not a protocol error, and not a stack trace in the log.</summary>
    private static async Task<CallToolResult> Guard(Func<Task<string>> action)
    {
        try
        {
            return Result(await action(), isError: false);
        }
        catch (LoopApiException error)
        {
            return Result(error.Message, isError: true);
        }
        catch (ArgumentException error)
        {
            return Result(error.Message, isError: true);
        }
    }

    internal static CallToolResult Result(string text, bool isError) =>
        new() { Content = [new TextContentBlock { Text = text }], IsError = isError };

    private static string Required(string? value, string name) =>
        Blank(value) ?? throw new ArgumentException($"{name} is required, e.g. \"task_01JD...\" from list_tasks");

    private static string? Blank(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}
