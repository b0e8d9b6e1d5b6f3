namespace Loop.Domain.Tasks;

using System.Text;
using Loop.Domain.Runs;

/// <summary>What a loop task does after an iteration.</summary>
public sealed record LoopDecision(LoopState State, string? StopReason, string? NextPrompt);

/// <summary>
/// The rules of autonomous loop tasks: run the prompt, feed each iteration's output into the
/// next, and stop when the output states the completion promise as an exact tag at its end
/// (<c>&lt;promise&gt;DONE&lt;/promise&gt;</c>, <see cref="StatesPromise"/>), when max_iterations is reached, when an iteration
/// fails, or when the output repeats the previous one (no progress).
/// </summary>
public static class LoopTaskPolicy
{
    public static string PromiseTag(string promise) => $"<promise>{promise}</promise>";

    /// <summary>The prompt of the task's current iteration (<see cref="ScheduledTask.Iteration"/>), carrying
    /// the previous iteration's output (<see cref="ScheduledTask.LastOutput"/>) when there was one.</summary>
    public static string PromptFor(ScheduledTask task) =>
        WithInstructions(task, task.Prompt, task.Iteration > 1 ? task.LastOutput : null, task.Iteration);

    /// <summary>Decides after iteration <paramref name="task"/>.Iteration ended as <paramref name="run"/>.</summary>
    public static LoopDecision After(ScheduledTask task, Run run)
    {
        var output = run.Reply ?? "";
        if (run.Status != RunStatus.Succeeded)
        {
            return run.Status == RunStatus.Cancelled
                ? new LoopDecision(LoopState.Stopped, $"iteration {task.Iteration} was cancelled" + (run.Error is { } why ? $": {why}" : ""), null)
                : new LoopDecision(LoopState.Failed, $"iteration {task.Iteration} {run.Status.ToWire()}: {run.Error}", null);
        }
        if (StatesPromise(output, task.CompletionPromise))
        {
            return new LoopDecision(LoopState.Completed, $"completed: iteration {task.Iteration} output {PromiseTag(task.CompletionPromise)}", null);
        }
        if (task.LastOutput is not null && Normalize(task.LastOutput) == Normalize(output))
        {
            return new LoopDecision(LoopState.Stopped, $"no progress: iteration {task.Iteration} gave the same output as iteration {task.Iteration - 1}", null);
        }
        if (task.Iteration >= task.MaxIterations)
        {
            return new LoopDecision(LoopState.Stopped, $"reached max_iterations ({task.MaxIterations}) without {PromiseTag(task.CompletionPromise)}", null);
        }
        return new LoopDecision(LoopState.Running, null, PromptFor(task with { Iteration = task.Iteration + 1, LastOutput = output }));
    }

    /// <summary>Whether the agent states the promise as its conclusion: the last non-empty line of its final
    /// result ends with the exact tag. Quoting the instruction, or saying it will give the tag later,
    /// puts the tag elsewhere and does not count; nor does the bare word or a changed tag.</summary>
    public static bool StatesPromise(string output, string promise) =>
        output.ReplaceLineEndings("\n").Split('\n').Select(line => line.Trim()).LastOrDefault(line => line.Length > 0) is { } last
        && last.EndsWith(PromiseTag(promise), StringComparison.Ordinal);

    private static string Normalize(string text) => text.Trim().ReplaceLineEndings("\n");

    private static string WithInstructions(ScheduledTask task, string prompt, string? previousOutput, int iteration)
    {
        var text = new StringBuilder(prompt.TrimEnd());
        text.Append("\n\n[Loop task \"").Append(task.Name).Append("\", iteration ").Append(iteration)
            .Append(" of at most ").Append(task.MaxIterations).Append(". When the work is completely done, end your answer with ")
            .Append(PromiseTag(task.CompletionPromise)).Append(" as its last line; it counts only there.]");
        if (previousOutput is not null)
        {
            text.Append("\n\nOutput of the previous iteration:\n").Append(previousOutput.TrimEnd());
        }
        return text.ToString();
    }
}
