namespace Loop.Runtime;

using Loop.Domain.Runs;
using Microsoft.Extensions.Logging;

/// <summary>When a status message may be edited next. Chat platforms limit edits, and a message that
/// changes many times a second cannot be read anyway: an edit with news waits until
/// <see cref="MinGap"/> after the last one; one for the clock alone until <see cref="ClockGap"/> after it.</summary>
public sealed class StatusPacer(TimeSpan minGap, TimeSpan clockGap)
{
    public static readonly TimeSpan DefaultMinGap = TimeSpan.FromSeconds(2);
    public static readonly TimeSpan DefaultClockGap = TimeSpan.FromSeconds(10);

    public TimeSpan MinGap { get; } = minGap;
    public TimeSpan ClockGap { get; } = clockGap;

    /// <summary>When the message was last shown (created or edited); null before it was.</summary>
    public DateTimeOffset? LastShown { get; private set; }

    /// <summary>The earliest instant the next edit may go out: with news, or for the clock alone.</summary>
    public DateTimeOffset NextAt(bool news) =>
        LastShown is { } last ? last + (news ? MinGap : ClockGap) : DateTimeOffset.MinValue;

    public void Shown(DateTimeOffset at) => LastShown = at;
}

/// <summary>What a status message should say now; <see cref="Final"/> for the last edit (no Stop button).</summary>
public sealed record StatusView(string Text, bool Final);

/// <summary>
/// Keeps one run's status message up to date: shows it at once, edits it as the run's progress changes
/// (never sooner than <see cref="StatusPacer.MinGap"/> after the previous edit, and for the clock alone
/// every <see cref="StatusPacer.ClockGap"/>), and edits it a last time when the run ends. The platform's
/// part is <c>show</c>: create the message the first time, edit it after. A show that fails ends the
/// status (the run and its reply go on without it).
/// </summary>
public sealed class RunStatusReporter
{
    private readonly object _gate = new();
    private readonly RunProgress _progress;
    private readonly StatusPacer _pacer;
    private readonly Func<StatusView, CancellationToken, Task> _show;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly string _runId;
    private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource _news = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private (RunStatus Status, DateTimeOffset At)? _end;
    private Task _pump = Task.CompletedTask;

    private RunStatusReporter(string runId, RunProgress progress, StatusPacer pacer, Func<StatusView, CancellationToken, Task> show, TimeProvider time, ILogger logger)
    {
        _runId = runId;
        _progress = progress;
        _pacer = pacer;
        _show = show;
        _time = time;
        _logger = logger;
    }

    /// <summary>Starts showing the run's status; <paramref name="stopping"/> ends it without a last edit (shutdown).</summary>
    public static RunStatusReporter Start(string runId, RunProgress progress, StatusPacer pacer, Func<StatusView, CancellationToken, Task> show,
        TimeProvider time, ILogger logger, CancellationToken stopping)
    {
        var reporter = new RunStatusReporter(runId, progress, pacer, show, time, logger);
        // Not on the thread pool: the first show is asked for before this returns, so a platform that
        // sends a chat's messages in the order asked puts the status before the run's reply.
        reporter._pump = reporter.PumpAsync(stopping);
        return reporter;
    }

    /// <summary>Completes after the last edit (or once the status gave up).</summary>
    public Task Completion => _pump;

    /// <summary>Takes a line of the run's output.</summary>
    public void Output(string line)
    {
        if (_progress.Feed(line))
        {
            lock (_gate)
            {
                _news.TrySetResult();
            }
        }
    }

    /// <summary>The run ended: the status is edited a last time, as soon as the pacer allows.</summary>
    public void End(RunStatus status, DateTimeOffset at)
    {
        lock (_gate)
        {
            _end ??= (status, at);
        }
        _ended.TrySetResult();
    }

    private async Task PumpAsync(CancellationToken stopping)
    {
        try
        {
            await ShowAsync(new StatusView(_progress.Working(_time.GetUtcNow()), Final: false), stopping);
            var shownVersion = _progress.Version;
            while (!_ended.Task.IsCompleted)
            {
                Task news;
                lock (_gate)
                {
                    if (_news.Task.IsCompleted)
                    {
                        _news = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    }
                    news = _news.Task;
                }
                // Checked after taking the signal: news that came before it is seen here, news after it completes it.
                if (_progress.Version == shownVersion)
                {
                    await WaitUntilAsync(_pacer.NextAt(news: false), Task.WhenAny(news, _ended.Task), stopping);
                }
                if (_ended.Task.IsCompleted)
                {
                    break;
                }
                // However much happens meanwhile, one edit per MinGap; an end that comes while it waits is the next edit instead.
                await WaitUntilAsync(_pacer.NextAt(news: true), _ended.Task, stopping);
                if (_ended.Task.IsCompleted)
                {
                    break;
                }
                shownVersion = _progress.Version;
                await ShowAsync(new StatusView(_progress.Working(_time.GetUtcNow()), Final: false), stopping);
            }
            await WaitUntilAsync(_pacer.NextAt(news: true), null, stopping);
            (RunStatus Status, DateTimeOffset At) end;
            lock (_gate)
            {
                end = _end!.Value;
            }
            await ShowAsync(new StatusView(_progress.Ended(end.Status, end.At), Final: true), stopping);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
        catch (Exception error)
        {
            // The status is a courtesy: the run and its reply do not depend on it.
            _logger.LogWarning("The status message of run {RunId} is not updated any more: {Error}", _runId, error.Message);
        }
    }

    private async Task ShowAsync(StatusView view, CancellationToken stopping)
    {
        await _show(view, stopping);
        _pacer.Shown(_time.GetUtcNow());
    }

    /// <summary>Waits until <paramref name="at"/> by the clock, or until <paramref name="early"/> completes.</summary>
    private async Task WaitUntilAsync(DateTimeOffset at, Task? early, CancellationToken stopping)
    {
        var wait = at - _time.GetUtcNow();
        if (wait <= TimeSpan.Zero || early?.IsCompleted == true)
        {
            return;
        }
        if (early is null)
        {
            await Task.Delay(wait, _time, stopping);
            return;
        }
        // The timer is cancelled once it is not needed: a run's waits do not pile up until they fire.
        using var timer = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        await Task.WhenAny(Task.Delay(wait, _time, timer.Token), early);
        await timer.CancelAsync();
        stopping.ThrowIfCancellationRequested();
    }
}
