namespace Loop.Runtime;

using Loop.Docker;
using Microsoft.Extensions.Logging;

/// <summary>
/// What Loop knows about the Docker engine and the agent image: reachability (re-checked in the
/// background when a health read finds it stale, so health stays instant) and the image's
/// build, which runs in the background on start-up when the image is missing.
/// </summary>
public sealed class DockerEngineState(
    DockerEngine engine,
    string image,
    AgentImageSource source,
    IReadOnlyDictionary<string, string> buildArgs,
    TimeProvider time,
    ILogger<DockerEngineState> logger)
{
    private static readonly TimeSpan RecheckAfter = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan CheckTimeout = TimeSpan.FromSeconds(3);
    // The first check decides whether start-up reaps orphaned containers: a slow first answer
    // (a loaded machine, a remote engine) must not skip that.
    private static readonly TimeSpan FirstCheckTimeout = TimeSpan.FromSeconds(20);
    private readonly object _gate = new();
    private Task<bool> _imageReady = Task.FromResult(false);
    private string _imageStatus = "unknown";
    private EngineHealth _health = new(false, engine.Endpoint, null, "not checked yet", image, "unknown");
    private DateTimeOffset _checkedAt = DateTimeOffset.MinValue;
    private int _checking;

    public string Image => image;

    public EngineHealth Health
    {
        get
        {
            lock (_gate)
            {
                if (time.GetUtcNow() - _checkedAt > RecheckAfter && Interlocked.Exchange(ref _checking, 1) == 0)
                {
                    _ = Task.Run(() => CheckAsync(CancellationToken.None));
                }
                return _health with { ImageStatus = _imageStatus };
            }
        }
    }

    /// <summary>Pings the engine and records the answer; returns whether it is reachable.</summary>
    public async Task<bool> CheckAsync(CancellationToken cancellationToken)
    {
        EngineHealth health;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            lock (_gate)
            {
                timeout.CancelAfter(_checkedAt == DateTimeOffset.MinValue ? FirstCheckTimeout : CheckTimeout);
            }
            var version = await engine.PingAsync(timeout.Token);
            health = new EngineHealth(true, engine.Endpoint, version, null, image, _imageStatus);
        }
        catch (Exception error) when (error is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            health = new EngineHealth(false, engine.Endpoint, null, error.Message, image, _imageStatus);
        }
        lock (_gate)
        {
            if (_health.Reachable != health.Reachable || _checkedAt == DateTimeOffset.MinValue)
            {
                if (health.Reachable)
                {
                    logger.LogInformation("Docker engine at {Endpoint} is reachable (API {ApiVersion})", engine.Endpoint, health.ApiVersion);
                }
                else
                {
                    logger.LogWarning("Docker engine at {Endpoint} is not reachable: {Error}. Agent runs will fail until it is, or until runner is set to process.", engine.Endpoint, health.Error);
                }
            }
            _health = health;
            _checkedAt = time.GetUtcNow();
        }
        Interlocked.Exchange(ref _checking, 0);
        return health.Reachable;
    }

    /// <summary>Starts checking for the agent image, building it if it is missing, unless that is
    /// under way or done already; returns at once.</summary>
    public void EnsureImage()
    {
        lock (_gate)
        {
            if (!_imageReady.IsCompleted || _imageReady.Result)
            {
                return;
            }
            _imageStatus = "checking";
            // A build outlives the run that asked for it; it ends with the process.
            _imageReady = Task.Run(() => EnsureImageAsync(CancellationToken.None));
        }
    }

    /// <summary>Waits until the agent image is there; a check that failed earlier (engine down,
    /// build error) is tried again first. Returns false when the image cannot be had.</summary>
    public Task<bool> WaitForImageAsync(CancellationToken cancellationToken)
    {
        EnsureImage();
        Task<bool> ready;
        lock (_gate)
        {
            ready = _imageReady;
        }
        return ready.WaitAsync(cancellationToken);
    }

    private async Task<bool> EnsureImageAsync(CancellationToken cancellationToken)
    {
        try
        {
            var builder = new ImageBuilder(engine);
            var (exists, hash) = await builder.InspectLabelAsync(image, AgentImageSource.HashLabel, cancellationToken);
            if (exists && (source.Hash is null || hash == source.Hash))
            {
                SetImageStatus("present");
                return true;
            }
            SetImageStatus("building");
            logger.LogInformation(exists
                ? "Agent image {Image} was built from other files than those in {Origin}: building it again (this may take a few minutes)"
                : "Agent image {Image} is missing: building it from {Origin} (this takes a few minutes the first time)", image, source.Origin);
            await builder.BuildAsync(image, source.Files, buildArgs,
                line => logger.LogInformation("Building {Image}: {Progress}", image, line.TrimEnd()), cancellationToken,
                source.Hash is { } wanted ? new Dictionary<string, string> { [AgentImageSource.HashLabel] = wanted } : null);
            SetImageStatus("present");
            logger.LogInformation("Agent image {Image} is built", image);
            return true;
        }
        catch (Exception error) when (error is not OperationCanceledException)
        {
            SetImageStatus("failed: " + error.Message);
            logger.LogError("Agent image {Image} is not available: {Error}. Agent runs will fail until it is; build it with `make docker-build` or fix the error and restart.", image, error.Message);
            return false;
        }
    }

    private void SetImageStatus(string status)
    {
        lock (_gate)
        {
            _imageStatus = status;
        }
    }
}
