namespace Loop.Runtime;

using Loop.Domain.Runs;
using Loop.Domain.Tasks;
using Loop.Grains;

/// <summary>
/// The rules for what a task may say, with messages that say what to fix: its schedule, prompt,
/// name and settings, and how a change applies to a stored task. No enabled cron or interval task
/// may come due more often than <paramref name="minimumInterval"/>.
/// </summary>
public sealed class TaskEdits(TaskIntervalMinimum minimumInterval)
{
    public const int MaxPromptLength = 100_000;

    /// <summary>The task with <paramref name="change"/> applied at <paramref name="now"/>: a new
    /// schedule or a re-enabled task counts from now, a disabled one has no next run, and a loop
    /// task that is disabled while it runs stops.</summary>
    public ScheduledTask Apply(ScheduledTask task, TaskChangeRequest change, DateTimeOffset now)
    {
        var type = ParseType(change.Type) ?? task.Type;
        var rescheduled = change.Schedule is not null || change.Type is not null || change.Timezone is not null;
        var schedule = rescheduled
            ? Parse(type, change.Schedule ?? (change.Type is null ? task.Schedule : null), change.Timezone ?? task.TimeZone, now)
            : null;
        var enabled = change.Enabled ?? task.Enabled;
        if (enabled && !task.Enabled && !rescheduled && task.Done)
        {
            throw new LoopConflictException(
                $"task {task.Id} (\"{task.Name}\") is a once task that has {(task.LastRunAt is { } ran ? $"run already, at {ran:yyyy-MM-dd HH:mm:ss}Z" : "missed its instant")}; "
                + "give it a new schedule (a later instant or a duration like 10m) to run it again");
        }
        if (enabled && !rescheduled && type != TaskType.Loop)
        {
            // A task made before the minimum (or before it was raised) is held to it once it is touched.
            CheckFrequency(Stored(task), now);
        }
        // A new prompt replaces a prompt file, and a prompt file a prompt.
        var (prompt, promptFile) = change.Prompt is null && change.PromptFile is null
            ? (task.Prompt, task.PromptFile)
            : ValidPromptSource(change.Prompt, change.PromptFile);
        var updated = task with
        {
            Type = type,
            Schedule = schedule?.Text ?? task.Schedule,
            TimeZone = schedule is null ? task.TimeZone : schedule.TimeZone,
            Prompt = prompt,
            PromptFile = promptFile,
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
            var parsed = schedule ?? Stored(updated);
            updated = updated with { NextRunAt = enabled ? parsed.FirstDue(now) : null };
        }
        if (type == TaskType.Loop && !enabled && task.LoopState == LoopState.Running)
        {
            updated = updated with { LoopState = LoopState.Stopped, StopReason = "stopped: the task was disabled" };
        }
        return updated;
    }

    /// <summary>The task as it was before its slots were claimed ahead (their runs queued for an
    /// instant still to come): next due at the first of them.</summary>
    public static ScheduledTask Unclaimed(ScheduledTask task, IReadOnlyList<Run> claimedAhead) =>
        claimedAhead.Count == 0 ? task : task with { NextRunAt = claimedAhead.Min(r => r.CreatedAt) };

    public TaskSchedule Parse(TaskType type, string? schedule, string? timeZone, DateTimeOffset now)
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

    public void CheckFrequency(TaskSchedule schedule, DateTimeOffset now)
    {
        if (minimumInterval.Problem(schedule, now) is { } problem)
        {
            throw new LoopValidationException("schedule", problem);
        }
    }

    public static TaskSchedule Stored(ScheduledTask task)
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

    public static TaskType? ParseType(string? value) => value switch
    {
        null => null,
        _ when TaskWire.TryType(value, out var type) => type,
        _ => throw new LoopValidationException("type", $"type '{value}' is not one of cron, interval, once, loop (e.g. \"type\": \"cron\" with \"schedule\": \"*/5 * * * *\")"),
    };

    public static TaskContext? ParseContext(string? value) => value switch
    {
        null => null,
        _ when TaskWire.TryContext(value, out var context) => context,
        _ => throw new LoopValidationException("context", $"context '{value}' must be isolated (a session of the task's own, the default) or channel (the chat's session)"),
    };

    public static MisfirePolicy? ParseMisfire(string? value) => value switch
    {
        null => null,
        _ when TaskWire.TryMisfire(value, out var misfire) => misfire,
        _ => throw new LoopValidationException("misfire", $"misfire '{value}' must be run_once (fire once at start-up for missed slots, the default) or skip"),
    };

    public static string ValidPrompt(string? prompt)
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

    /// <summary>The prompt and prompt file of a task given either: a prompt, or a prompt file (the prompt then empty).</summary>
    public static (string Prompt, string? PromptFile) ValidPromptSource(string? prompt, string? promptFile)
    {
        if (promptFile is null)
        {
            return string.IsNullOrWhiteSpace(prompt)
                ? throw new LoopValidationException("prompt", "prompt is required: what the agent should do, like \"Summarise today's commits\" (or prompt_file: a file of the project to read it from)")
                : (ValidPrompt(prompt), null);
        }
        if (prompt is not null)
        {
            throw new LoopValidationException("prompt_file", "give prompt or prompt_file, not both: the prompt file's text is the prompt");
        }
        return ("", ValidPromptFile(promptFile));
    }

    /// <summary>A path relative to the project, inside it, like "PROMPT_plan.md" or "docs/plan.md".</summary>
    public static string ValidPromptFile(string promptFile)
    {
        var parts = promptFile.Replace('\\', '/').Split('/');
        if (string.IsNullOrWhiteSpace(promptFile) || promptFile.Length > 500 || Path.IsPathRooted(promptFile)
            || parts.Any(part => part is ".." or "") || promptFile.Any(char.IsControl))
        {
            throw new LoopValidationException("prompt_file",
                $"prompt_file must be a path inside the channel's project directory, relative to it, like \"PROMPT_plan.md\" or \"docs/plan.md\" (got '{promptFile}')");
        }
        return promptFile;
    }

    public static string? ValidName(string? name) => name switch
    {
        null => null,
        { Length: > 0 and <= 100 } when !string.IsNullOrWhiteSpace(name) => name.Trim(),
        _ => throw new LoopValidationException("name", "name must be 1 to 100 characters, like \"daily-summary\""),
    };

    public static int? ValidMaxIterations(int? value) => value switch
    {
        null => null,
        >= 1 and <= 1000 => value,
        _ => throw new LoopValidationException("max_iterations", $"max_iterations must be between 1 and 1000 (got {value}); the default is {ScheduledTask.DefaultMaxIterations}"),
    };

    public static string? ValidPromise(string? value) => value switch
    {
        null => null,
        { Length: > 0 and <= 100 } when !value.Contains('<') && !value.Contains('>') && !string.IsNullOrWhiteSpace(value) => value,
        _ => throw new LoopValidationException("completion_promise", "completion_promise must be 1 to 100 characters without < or >, like \"DONE\" (the agent then says <promise>DONE</promise>)"),
    };

    public static string DefaultName(string prompt)
    {
        var line = prompt.Trim().Split('\n')[0].Trim();
        return line.Length <= 40 ? line : line[..40].TrimEnd() + "…";
    }
}
