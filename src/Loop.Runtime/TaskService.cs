namespace Loop.Runtime;

using Loop.Config;
using Loop.Domain;
using Loop.Domain.Runs;
using Loop.Domain.Tasks;

/// <summary>A task as a front end asks for it (REST body, MCP tool, chat command).</summary>
public sealed record NewTaskRequest(
    string? ChannelId, string? Type, string? Schedule, string? Prompt,
    string? Name = null, string? Timezone = null, string? Context = null, string? Misfire = null,
    bool? Enabled = null, int? MaxIterations = null, string? CompletionPromise = null);

/// <summary>Changes to a task; null leaves a field as it is.</summary>
public sealed record TaskChangeRequest(
    bool? Enabled = null, string? Schedule = null, string? Type = null, string? Prompt = null,
    string? Name = null, string? Timezone = null, string? Context = null, string? Misfire = null,
    int? MaxIterations = null, string? CompletionPromise = null);

/// <summary>
/// What front ends may do with tasks. Validates with messages that say what to fix, keeps the
/// store and the scheduler's timers in step, and scopes channel tokens to their channel. No enabled
/// cron or interval task may come due more often than <paramref name="minimumInterval"/>.
/// </summary>
public sealed class TaskService(ILoopStore store, TaskScheduler scheduler, ChannelService channels,
    IReadOnlyList<TaskTemplateConfig> templates, TaskIntervalMinimum minimumInterval, TimeProvider time)
{
    public const int MaxPromptLength = 100_000;

    public async Task<ScheduledTask> CreateAsync(Caller caller, NewTaskRequest request, CancellationToken cancellationToken, string? template = null)
    {
        if (string.IsNullOrWhiteSpace(request.ChannelId))
        {
            throw new LoopValidationException("channel_id", "channel_id is required: the channel the task belongs to, like \"ch_01hx...\" (see GET /api/channels)");
        }
        caller.EnsureCanAccess(request.ChannelId);
        if (await store.GetChannelAsync(request.ChannelId, cancellationToken) is null)
        {
            throw new LoopValidationException("channel_id", $"channel_id {request.ChannelId} does not exist; register it first with POST /api/channels");
        }
        var type = ParseType(request.Type) ?? throw new LoopValidationException("type", "type is required: one of cron, interval, once, loop");
        var prompt = ValidPrompt(request.Prompt);
        var now = time.GetUtcNow();
        var schedule = Parse(type, request.Schedule, request.Timezone, now);
        var enabled = request.Enabled ?? true;
        var task = new ScheduledTask(
            Ids.New("task", time), request.ChannelId, ValidName(request.Name) ?? template ?? DefaultName(prompt), type, schedule.Text,
            schedule.TimeZone, prompt, enabled, ParseContext(request.Context) ?? TaskContext.Isolated,
            ParseMisfire(request.Misfire) ?? MisfirePolicy.RunOnce,
            enabled ? schedule.FirstDue(now) : null, null, null, template,
            ValidMaxIterations(request.MaxIterations) ?? ScheduledTask.DefaultMaxIterations,
            ValidPromise(request.CompletionPromise) ?? ScheduledTask.DefaultCompletionPromise,
            0, LoopState.Idle, null, null, now, now);

        var (stored, created) = await store.CreateTaskAsync(task, cancellationToken);
        if (!created)
        {
            return stored;
        }
        if (stored.Type == TaskType.Loop && stored.Enabled)
        {
            return await StartLoopAsync(stored, cancellationToken);
        }
        scheduler.Refresh(stored);
        return stored;
    }

    public async Task<ScheduledTask> GetAsync(Caller caller, string taskId, CancellationToken cancellationToken)
    {
        var task = await store.GetTaskAsync(taskId, cancellationToken)
            ?? throw new LoopNotFoundException($"task {taskId} does not exist");
        caller.EnsureCanAccess(task.ChannelId);
        return task;
    }

    public async Task<IReadOnlyList<ScheduledTask>> ListAsync(Caller caller, string? channelId, CancellationToken cancellationToken)
    {
        channelId ??= caller.ChannelId;
        if (channelId is not null)
        {
            await channels.GetChannelAsync(caller, channelId, cancellationToken);
        }
        return await store.ListTasksAsync(channelId, cancellationToken);
    }

    public async Task<ScheduledTask> UpdateAsync(Caller caller, string taskId, TaskChangeRequest change, CancellationToken cancellationToken)
    {
        var task = await GetAsync(caller, taskId, cancellationToken);
        var now = time.GetUtcNow();
        var type = ParseType(change.Type) ?? task.Type;
        var rescheduled = change.Schedule is not null || change.Type is not null || change.Timezone is not null;
        var schedule = rescheduled
            ? Parse(type, change.Schedule ?? (change.Type is null ? task.Schedule : null), change.Timezone ?? task.TimeZone, now)
            : null;
        var enabled = change.Enabled ?? task.Enabled;
        if (enabled && !rescheduled && type != TaskType.Loop)
        {
            // A task made before the minimum (or before it was raised) is held to it once it is touched.
            CheckFrequency(Stored(task), now);
        }
        var updated = task with
        {
            Type = type,
            Schedule = schedule?.Text ?? task.Schedule,
            TimeZone = schedule is null ? task.TimeZone : schedule.TimeZone,
            Prompt = change.Prompt is null ? task.Prompt : ValidPrompt(change.Prompt),
            Name = ValidName(change.Name) ?? task.Name,
            Enabled = enabled,
            Context = ParseContext(change.Context) ?? task.Context,
            Misfire = ParseMisfire(change.Misfire) ?? task.Misfire,
            MaxIterations = ValidMaxIterations(change.MaxIterations) ?? task.MaxIterations,
            CompletionPromise = ValidPromise(change.CompletionPromise) ?? task.CompletionPromise,
            UpdatedAt = now,
        };
        if (type != TaskType.Loop && (rescheduled || (enabled && !task.Enabled) || !enabled))
        {
            // A new schedule, or a re-enabled task, counts from now; a disabled one has no next run.
            var parsed = schedule ?? Stored(updated);
            updated = updated with { NextRunAt = enabled ? parsed.FirstDue(now) : null };
        }
        if (type == TaskType.Loop && !enabled && task.LoopState == LoopState.Running)
        {
            updated = updated with { LoopState = LoopState.Stopped, StopReason = "stopped: the task was disabled" };
        }
        if (!await store.UpdateTaskAsync(updated, cancellationToken))
        {
            throw new LoopNotFoundException($"task {taskId} does not exist");
        }
        if (type == TaskType.Loop)
        {
            scheduler.Forget(taskId);
        }
        else
        {
            scheduler.Refresh(updated);
        }
        return updated;
    }

    public async Task DeleteAsync(Caller caller, string taskId, CancellationToken cancellationToken)
    {
        var task = await GetAsync(caller, taskId, cancellationToken);
        await store.DeleteTaskAsync(taskId, cancellationToken);
        scheduler.Forget(taskId);
        await CancelActiveRunAsync(task, cancellationToken);
    }

    public async Task<IReadOnlyList<Run>> ListRunsAsync(Caller caller, string taskId, int limit, string? before, CancellationToken cancellationToken)
    {
        await GetAsync(caller, taskId, cancellationToken);
        return await store.ListTaskRunsAsync(taskId, ChannelService.ClampPage(limit), before, cancellationToken);
    }

    /// <summary>Starts a new cycle of a loop task from iteration 1.</summary>
    public async Task<ScheduledTask> StartAsync(Caller caller, string taskId, CancellationToken cancellationToken)
    {
        var task = await GetAsync(caller, taskId, cancellationToken);
        if (task.Type != TaskType.Loop)
        {
            throw new LoopConflictException($"task {taskId} is a {TaskWire.ToWire(task.Type)} task; only loop tasks are started and stopped (toggle it with PATCH {{\"enabled\": true}})");
        }
        if (task.LoopState == LoopState.Running)
        {
            throw new LoopConflictException($"loop task {taskId} is already running (iteration {task.Iteration}); stop it first");
        }
        return await StartLoopAsync(task with { Enabled = true }, cancellationToken);
    }

    /// <summary>Stops a running loop task and cancels its current iteration.</summary>
    public async Task<ScheduledTask> StopAsync(Caller caller, string taskId, CancellationToken cancellationToken)
    {
        var task = await GetAsync(caller, taskId, cancellationToken);
        if (task.Type != TaskType.Loop)
        {
            throw new LoopConflictException($"task {taskId} is a {TaskWire.ToWire(task.Type)} task; only loop tasks are started and stopped (disable it with PATCH {{\"enabled\": false}})");
        }
        if (task.LoopState != LoopState.Running)
        {
            throw new LoopConflictException($"loop task {taskId} is not running ({TaskWire.ToWire(task.LoopState)})");
        }
        var stopped = task with { LoopState = LoopState.Stopped, StopReason = $"stopped by request at iteration {task.Iteration}", UpdatedAt = time.GetUtcNow() };
        await store.UpdateTaskAsync(stopped, cancellationToken);
        await CancelActiveRunAsync(task, cancellationToken);
        return stopped;
    }

    public IReadOnlyList<TaskTemplateConfig> Templates => templates;

    /// <summary>Adds a configured template to a channel as a task; adding it again is a no-op.</summary>
    public async Task<(ScheduledTask Task, bool Created)> AddTemplateAsync(Caller caller, string channelId, string name, CancellationToken cancellationToken)
    {
        var template = templates.FirstOrDefault(t => t.Name == name)
            ?? throw new LoopNotFoundException($"no task template named '{name}'; the configured ones are: {(templates.Count == 0 ? "(none: add task_templates to config.json)" : string.Join(", ", templates.Select(t => t.Name)))}");
        await channels.GetChannelAsync(caller, channelId, cancellationToken);
        var existing = (await store.ListTasksAsync(channelId, cancellationToken)).FirstOrDefault(t => t.Template == name);
        if (existing is not null)
        {
            return (existing, false);
        }
        var task = await CreateAsync(caller, new NewTaskRequest(channelId, template.Type, template.Schedule, template.Prompt, template.Name),
            cancellationToken, template: template.Name);
        return (task, true);
    }

    private async Task<ScheduledTask> StartLoopAsync(ScheduledTask task, CancellationToken cancellationToken)
    {
        var started = task with { Iteration = 1, LoopState = LoopState.Running, StopReason = null, LastOutput = null, UpdatedAt = time.GetUtcNow() };
        await scheduler.QueueIterationAsync(started, LoopTaskPolicy.PromptFor(started), cancellationToken);
        return started;
    }

    private async Task CancelActiveRunAsync(ScheduledTask task, CancellationToken cancellationToken)
    {
        var active = (await store.ListTaskRunsAsync(task.Id, 5, null, cancellationToken)).Where(r => !r.Status.IsFinal());
        foreach (var run in active)
        {
            try
            {
                await channels.CancelRunAsync(Caller.User, run.Id, cancellationToken);
            }
            catch (LoopConflictException)
            {
                // it ended meanwhile
            }
        }
    }

    private TaskSchedule Parse(TaskType type, string? schedule, string? timeZone, DateTimeOffset now)
    {
        TaskSchedule parsed;
        try
        {
            parsed = TaskSchedule.Parse(type, schedule, timeZone, now);
        }
        catch (ScheduleFormatException invalid)
        {
            throw new LoopValidationException(invalid.Field, invalid.Message);
        }
        CheckFrequency(parsed, now);
        return parsed;
    }

    private void CheckFrequency(TaskSchedule schedule, DateTimeOffset now)
    {
        if (minimumInterval.Problem(schedule, now) is { } problem)
        {
            throw new LoopValidationException("schedule", problem);
        }
    }

    private static TaskSchedule Stored(ScheduledTask task)
    {
        try
        {
            return TaskSchedule.FromStored(task.Type, task.Schedule, task.TimeZone);
        }
        catch (ScheduleFormatException invalid)
        {
            throw new LoopValidationException("schedule", $"the stored schedule no longer parses ({invalid.Message}); set a new one");
        }
    }

    private static TaskType? ParseType(string? value) => value switch
    {
        null => null,
        _ when TaskWire.TryType(value, out var type) => type,
        _ => throw new LoopValidationException("type", $"type '{value}' is not one of cron, interval, once, loop (e.g. \"type\": \"cron\" with \"schedule\": \"*/5 * * * *\")"),
    };

    private static TaskContext? ParseContext(string? value) => value switch
    {
        null => null,
        _ when TaskWire.TryContext(value, out var context) => context,
        _ => throw new LoopValidationException("context", $"context '{value}' must be isolated (a session of the task's own, the default) or channel (the chat's session)"),
    };

    private static MisfirePolicy? ParseMisfire(string? value) => value switch
    {
        null => null,
        _ when TaskWire.TryMisfire(value, out var misfire) => misfire,
        _ => throw new LoopValidationException("misfire", $"misfire '{value}' must be run_once (fire once at start-up for missed slots, the default) or skip"),
    };

    private static string ValidPrompt(string? prompt)
    {
        if (string.IsNullOrWhiteSpace(prompt))
        {
            throw new LoopValidationException("prompt", "prompt is required: what the agent should do, like \"Summarise today's commits\"");
        }
        if (prompt.Length > MaxPromptLength)
        {
            throw new LoopValidationException("prompt", $"prompt must be at most {MaxPromptLength} characters (got {prompt.Length})");
        }
        StoredText.Ensure("prompt", prompt);
        return prompt;
    }

    private static string? ValidName(string? name) => name switch
    {
        null => null,
        { Length: > 0 and <= 100 } when !string.IsNullOrWhiteSpace(name) => name.Trim(),
        _ => throw new LoopValidationException("name", "name must be 1 to 100 characters, like \"daily-summary\""),
    };

    private static int? ValidMaxIterations(int? value) => value switch
    {
        null => null,
        >= 1 and <= 1000 => value,
        _ => throw new LoopValidationException("max_iterations", $"max_iterations must be between 1 and 1000 (got {value}); the default is {ScheduledTask.DefaultMaxIterations}"),
    };

    private static string? ValidPromise(string? value) => value switch
    {
        null => null,
        { Length: > 0 and <= 100 } when !value.Contains('<') && !value.Contains('>') && !string.IsNullOrWhiteSpace(value) => value,
        _ => throw new LoopValidationException("completion_promise", "completion_promise must be 1 to 100 characters without < or >, like \"DONE\" (the agent then says <promise>DONE</promise>)"),
    };

    private static string DefaultName(string prompt)
    {
        var line = prompt.Trim().Split('\n')[0].Trim();
        return line.Length <= 40 ? line : line[..40].TrimEnd() + "…";
    }
}
