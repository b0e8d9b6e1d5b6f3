namespace Loop.Grains;

/// <summary>
/// The single owner of one task (key: the task id): its loop iterations and every change to it.
/// It arms the task on its node's timetable, which fires it at the due instant; a reminder arms it
/// again wherever the grain comes back; the store's claim makes each slot fire once.
/// </summary>
[Alias("Loop.ITaskGrain")]
public interface ITaskGrain : IGrainWithStringKey
{
    /// <summary>Takes the task's stored state: arms it and keeps its reminder, or drops both.</summary>
    [Alias("Arm")]
    Task Arm();

    [Alias("Update")]
    Task<TaskEdit> Update(TaskChangeRequest change);

    /// <summary>Starts a loop task from iteration 1.</summary>
    [Alias("StartLoop")]
    Task<TaskEdit> StartLoop();

    /// <summary>Stops a running loop task and cancels its current iteration.</summary>
    [Alias("StopLoop")]
    Task<TaskEdit> StopLoop();

    /// <summary>Deletes the task and cancels its run in progress.</summary>
    [Alias("Delete")]
    Task<TaskEdit> Delete();

    /// <summary>After a restart: queues the next iteration of a loop task a stop interrupted.</summary>
    [Alias("ResumeLoop")]
    Task ResumeLoop();

    /// <summary>One of the task's runs ended: a loop task decides its next iteration.</summary>
    [Alias("RunFinished")]
    Task RunFinished(string runId);
}

/// <summary>Changes to a task; null leaves a field as it is.</summary>
[GenerateSerializer, Immutable, Alias("Loop.TaskChangeRequest")]
public sealed record TaskChangeRequest(
    [property: Id(0)] bool? Enabled = null,
    [property: Id(1)] string? Schedule = null,
    [property: Id(2)] string? Type = null,
    [property: Id(3)] string? Prompt = null,
    [property: Id(4)] string? Name = null,
    [property: Id(5)] string? Timezone = null,
    [property: Id(6)] string? Context = null,
    [property: Id(7)] string? Misfire = null,
    [property: Id(8)] int? MaxIterations = null,
    [property: Id(9)] string? CompletionPromise = null,
    [property: Id(10)] string? PromptFile = null);

public enum TaskProblem
{
    None,
    Invalid,
    Conflict,
    NotFound,
}

/// <summary>How a change to a task went: done, or refused (<see cref="Field"/> names what to fix for <see cref="TaskProblem.Invalid"/>).</summary>
[GenerateSerializer, Immutable, Alias("Loop.TaskEdit")]
public sealed record TaskEdit([property: Id(0)] TaskProblem Problem, [property: Id(1)] string? Field = null, [property: Id(2)] string? Message = null)
{
    public static readonly TaskEdit Done = new(TaskProblem.None);
}
