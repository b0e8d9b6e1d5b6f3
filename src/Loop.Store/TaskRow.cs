namespace Loop.Store;

using Loop.Domain.Tasks;

internal sealed class TaskRow
{
    public const string Select = """
        SELECT id AS Id, channel_id AS ChannelId, name AS Name, type AS Type, schedule AS Schedule,
               timezone AS TimeZone, prompt AS Prompt, enabled AS Enabled, context AS Context,
               misfire AS Misfire, next_run_at AS NextRunAt, last_run_at AS LastRunAt,
               session_id AS SessionId, template AS Template, max_iterations AS MaxIterations,
               completion_promise AS CompletionPromise, iteration AS Iteration, loop_state AS LoopState,
               stop_reason AS StopReason, last_output AS LastOutput, created_at AS CreatedAt, updated_at AS UpdatedAt,
               revision AS Revision, prompt_file AS PromptFile
        FROM tasks
        """;

    public const string Insert = """
        INSERT INTO tasks (id, channel_id, name, type, schedule, timezone, prompt, enabled, context, misfire,
            next_run_at, last_run_at, session_id, template, max_iterations, completion_promise, iteration,
            loop_state, stop_reason, last_output, created_at, updated_at, prompt_file)
        VALUES (@id, @channel_id, @name, @type, @schedule, @timezone, @prompt, @enabled, @context, @misfire,
            @next_run_at, @last_run_at, @session_id, @template, @max_iterations, @completion_promise, @iteration,
            @loop_state, @stop_reason, @last_output, @created_at, @updated_at, @prompt_file)
        """;

    public const string Update = """
        UPDATE tasks SET name = @name, type = @type, schedule = @schedule, timezone = @timezone, prompt = @prompt,
            enabled = @enabled, context = @context, misfire = @misfire, next_run_at = @next_run_at,
            last_run_at = @last_run_at, max_iterations = @max_iterations,
            completion_promise = @completion_promise, iteration = @iteration, loop_state = @loop_state,
            stop_reason = @stop_reason, last_output = @last_output, updated_at = @updated_at,
            prompt_file = @prompt_file, revision = revision + 1
        WHERE id = @id AND revision = @revision
        """;

    public string Id { get; set; } = "";
    public string ChannelId { get; set; } = "";
    public string Name { get; set; } = "";
    public string Type { get; set; } = "";
    public string Schedule { get; set; } = "";
    public string? TimeZone { get; set; }
    public string Prompt { get; set; } = "";
    public long Enabled { get; set; }
    public string Context { get; set; } = "";
    public string Misfire { get; set; } = "";
    public long? NextRunAt { get; set; }
    public long? LastRunAt { get; set; }
    public string? SessionId { get; set; }
    public string? Template { get; set; }
    public long MaxIterations { get; set; }
    public string CompletionPromise { get; set; } = "";
    public long Iteration { get; set; }
    public string LoopState { get; set; } = "";
    public string? StopReason { get; set; }
    public string? LastOutput { get; set; }
    public long CreatedAt { get; set; }
    public long UpdatedAt { get; set; }
    public long Revision { get; set; }
    public string? PromptFile { get; set; }

    public ScheduledTask ToTask() => new(
        Id, ChannelId, Name, TaskWire.TypeFrom(Type), Schedule, TimeZone, Prompt, Enabled != 0,
        TaskWire.ContextFrom(Context), TaskWire.MisfireFrom(Misfire), Columns.FromMs(NextRunAt), Columns.FromMs(LastRunAt),
        SessionId, Template, checked((int)MaxIterations), CompletionPromise, checked((int)Iteration),
        TaskWire.LoopStateFrom(LoopState), StopReason, LastOutput, Columns.FromMs(CreatedAt), Columns.FromMs(UpdatedAt))
    {
        Revision = Revision,
        PromptFile = PromptFile,
    };

    public static object Parameters(ScheduledTask t) => new
    {
        id = t.Id,
        channel_id = t.ChannelId,
        name = t.Name,
        type = TaskWire.ToWire(t.Type),
        schedule = t.Schedule,
        timezone = t.TimeZone,
        prompt = t.Prompt,
        enabled = t.Enabled ? 1 : 0,
        context = TaskWire.ToWire(t.Context),
        misfire = TaskWire.ToWire(t.Misfire),
        next_run_at = Columns.ToMs(t.NextRunAt),
        last_run_at = Columns.ToMs(t.LastRunAt),
        session_id = t.SessionId,
        template = t.Template,
        max_iterations = t.MaxIterations,
        completion_promise = t.CompletionPromise,
        iteration = t.Iteration,
        loop_state = TaskWire.ToWire(t.LoopState),
        stop_reason = t.StopReason,
        last_output = t.LastOutput,
        created_at = Columns.ToMs(t.CreatedAt),
        updated_at = Columns.ToMs(t.UpdatedAt),
        revision = t.Revision,
        prompt_file = t.PromptFile,
    };
}
