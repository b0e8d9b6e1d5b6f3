namespace Loop.Runtime;

using Loop.Config;
using Loop.Domain;
using Loop.Domain.Runs;
using Loop.Domain.Tasks;
using Loop.Grains;

/// <summary>A task as a front end asks for it (REST body, MCP tool, chat command).</summary>
public sealed record NewTaskRequest(
    string? ChannelId, string? Type, string? Schedule, string? Prompt,
    string? Name = null, string? Timezone = null, string? Context = null, string? Misfire = null,
    bool? Enabled = null, int? MaxIterations = null, string? CompletionPromise = null, string? PromptFile = null);

/// <summary>A task with its latest runs, oldest first; <see cref="Output"/> is the reply of the newest that ended.</summary>
public sealed record TaskOutput(ScheduledTask Task, IReadOnlyList<Run> Runs)
{
    public string? Output => Runs.LastOrDefault(r => r.Status.IsFinal())?.Reply;
}

/// <summary>
/// What front ends may do with tasks. Validates new tasks (<see cref="TaskEdits"/>), scopes channel
/// tokens to their channel, and leaves every change of a task to the task's grain, so an edit, a
/// stop and a firing never overwrite each other.
/// </summary>
public sealed class TaskService(ILoopStore store, IGrainFactory grains, ChannelService channels,
    IReadOnlyList<TaskTemplateConfig> templates, TaskEdits edits, TimeProvider time)
{
    public async Task<ScheduledTask> CreateAsync(Caller caller, NewTaskRequest request, CancellationToken cancellationToken, string? template = null)
    {
        if (string.IsNullOrWhiteSpace(request.ChannelId))
        {
            // A channel token's tasks are its channel's; a person's with no channel go to the "tasks" channel.
            request = request with { ChannelId = caller.ChannelId ?? (await store.EnsureTasksChannelAsync(cancellationToken)).Id };
        }
        caller.EnsureCanAccess(request.ChannelId);
        if (await store.GetChannelAsync(request.ChannelId, cancellationToken) is null)
        {
            throw new LoopValidationException("channel_id", $"channel_id {request.ChannelId} does not exist; register it first with POST /api/channels");
        }
        var type = TaskEdits.ParseType(request.Type) ?? throw new LoopValidationException("type", "type is required: one of cron, interval, once, loop");
        var (prompt, promptFile) = TaskEdits.ValidPromptSource(request.Prompt, request.PromptFile);
        var now = time.GetUtcNow();
        var schedule = edits.Parse(type, request.Schedule, request.Timezone, now);
        var enabled = request.Enabled ?? true;
        var task = new ScheduledTask(
            Ids.New("task", time), request.ChannelId, TaskEdits.ValidName(request.Name) ?? template ?? TaskEdits.DefaultName(promptFile ?? prompt), type, schedule.Text,
            schedule.TimeZone, prompt, enabled, TaskEdits.ParseContext(request.Context) ?? TaskContext.Isolated,
            TaskEdits.ParseMisfire(request.Misfire) ?? MisfirePolicy.RunOnce,
            enabled ? schedule.FirstDue(now) : null, null, null, template,
            TaskEdits.ValidMaxIterations(request.MaxIterations) ?? ScheduledTask.DefaultMaxIterations,
            TaskEdits.ValidPromise(request.CompletionPromise) ?? ScheduledTask.DefaultCompletionPromise,
            0, LoopState.Idle, null, null, now, now)
        {
            PromptFile = promptFile,
        };

        var (stored, created) = await store.CreateTaskAsync(task, cancellationToken);
        if (!created)
        {
            return stored;
        }
        if (stored.Type == TaskType.Loop && stored.Enabled)
        {
            return await ResultAsync(stored.Id, await Grain(stored.Id).StartLoop(), cancellationToken);
        }
        await Grain(stored.Id).Arm();
        return await AsShownAsync(stored, cancellationToken);
    }

    public async Task<ScheduledTask> GetAsync(Caller caller, string taskId, CancellationToken cancellationToken)
    {
        var task = await store.GetTaskAsync(taskId, cancellationToken)
            ?? throw new LoopNotFoundException($"task {taskId} does not exist");
        caller.EnsureCanAccess(task.ChannelId);
        return await AsShownAsync(task, cancellationToken);
    }

    public async Task<IReadOnlyList<ScheduledTask>> ListAsync(Caller caller, string? channelId, CancellationToken cancellationToken)
    {
        channelId ??= caller.ChannelId;
        if (channelId is not null)
        {
            await channels.GetChannelAsync(caller, channelId, cancellationToken);
        }
        var tasks = await store.ListTasksAsync(channelId, cancellationToken);
        var shown = new List<ScheduledTask>(tasks.Count);
        foreach (var task in tasks)
        {
            shown.Add(await AsShownAsync(task, cancellationToken));
        }
        return shown;
    }

    /// <summary>The task as a person reads it: a slot claimed ahead (its run queued for an instant still
    /// to come) is still its next run, so a once task is not shown done before it ran. Only a task claimed
    /// within the last <see cref="TaskClaimer.ClaimAhead"/> can have one: the others cost no query.</summary>
    private async Task<ScheduledTask> AsShownAsync(ScheduledTask task, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        return task is { NextRunAt: null, LastRunAt: { } claimed } && claimed >= now - TaskClaimer.ClaimAhead
            ? TaskEdits.Unclaimed(task, await store.ListRunsClaimedAheadAsync(task.Id, now, cancellationToken))
            : task;
    }

    public async Task<ScheduledTask> UpdateAsync(Caller caller, string taskId, TaskChangeRequest change, CancellationToken cancellationToken)
    {
        await GetAsync(caller, taskId, cancellationToken);
        return await ResultAsync(taskId, await Grain(taskId).Update(change), cancellationToken);
    }

    public async Task DeleteAsync(Caller caller, string taskId, CancellationToken cancellationToken)
    {
        await GetAsync(caller, taskId, cancellationToken);
        Refusal(await Grain(taskId).Delete());
    }

    public async Task<IReadOnlyList<Run>> ListRunsAsync(Caller caller, string taskId, int limit, string? before, CancellationToken cancellationToken)
    {
        await GetAsync(caller, taskId, cancellationToken);
        return await store.ListRunsAsync(new RunQuery(ChannelService.ClampPage(limit), TaskId: taskId, BeforeRunId: before), cancellationToken);
    }

    /// <summary>What a task said last: its latest run, or for a loop task every iteration of its
    /// current (or last) cycle, oldest first.</summary>
    public async Task<TaskOutput> GetOutputAsync(Caller caller, string taskId, CancellationToken cancellationToken)
    {
        var task = await GetAsync(caller, taskId, cancellationToken);
        var count = task.Type == TaskType.Loop ? Math.Clamp(task.Iteration, 1, ChannelService.MaxPageSize) : 1;
        var runs = await store.ListRunsAsync(new RunQuery(count, TaskId: taskId), cancellationToken);
        return new TaskOutput(task, runs.Reverse().ToList());
    }

    /// <summary>Starts a new cycle of a loop task from iteration 1.</summary>
    public async Task<ScheduledTask> StartAsync(Caller caller, string taskId, CancellationToken cancellationToken)
    {
        await GetAsync(caller, taskId, cancellationToken);
        return await ResultAsync(taskId, await Grain(taskId).StartLoop(), cancellationToken);
    }

    /// <summary>Stops a running loop task and cancels its current iteration.</summary>
    public async Task<ScheduledTask> StopAsync(Caller caller, string taskId, CancellationToken cancellationToken)
    {
        await GetAsync(caller, taskId, cancellationToken);
        return await ResultAsync(taskId, await Grain(taskId).StopLoop(), cancellationToken);
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

    private ITaskGrain Grain(string taskId) => grains.GetGrain<ITaskGrain>(taskId);

    /// <summary>The task as its grain left it, or the grain's refusal in the user's words.</summary>
    private async Task<ScheduledTask> ResultAsync(string taskId, TaskEdit edit, CancellationToken cancellationToken)
    {
        Refusal(edit);
        return await AsShownAsync(await store.GetTaskAsync(taskId, cancellationToken) ?? throw new LoopNotFoundException($"task {taskId} does not exist"), cancellationToken);
    }

    private static void Refusal(TaskEdit edit)
    {
        switch (edit.Problem)
        {
            case TaskProblem.Invalid:
                throw new LoopValidationException(edit.Field ?? "task", edit.Message!);
            case TaskProblem.Conflict:
                throw new LoopConflictException(edit.Message!);
            case TaskProblem.NotFound:
                throw new LoopNotFoundException(edit.Message!);
        }
    }
}
