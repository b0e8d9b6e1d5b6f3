namespace Loop.Client;

using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Loop.Config;

/// <summary>
/// A typed client of the daemon's REST API. <c>apiUrl</c> is <c>http://host:port</c> or
/// <c>unix:///abs/path/loop.sock</c> (HTTP over the daemon's unix socket, as agent containers reach it).
/// Every failure is a <see cref="LoopApiException"/> whose message a user can act on.
/// </summary>
public sealed class LoopApiClient : IDisposable
{
    public const string DefaultApiUrl = "http://127.0.0.1:8222";

    private static readonly LoopClientJson Json = LoopClientJson.Default;
    private readonly HttpClient _http;
    private readonly string _tokenSource;

    /// <param name="apiUrl">Where the daemon listens; see <see cref="ResolveApiUrl"/>.</param>
    /// <param name="token">Bearer token; when null, LOOP_CHANNEL_TOKEN, else LOOP_API_TOKEN, when set.</param>
    /// <param name="timeout">Per request; 30 s when null.</param>
    public LoopApiClient(string apiUrl, string? token = null, TimeSpan? timeout = null)
    {
        ApiUrl = apiUrl;
        var target = ParseApiUrl(apiUrl);
        var handler = new SocketsHttpHandler { PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30) };
        Uri baseAddress;
        if (target.IsUnixSocket)
        {
            var socketPath = target.LocalPath;
            handler.ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            };
            // The host name is only for the request line; the callback decides where bytes go.
            baseAddress = new Uri("http://loop.sock/");
        }
        else
        {
            baseAddress = target.BaseAddress;
        }
        _http = new HttpClient(handler) { BaseAddress = baseAddress, Timeout = timeout ?? TimeSpan.FromSeconds(30) };
        (Token, _tokenSource) = ResolveTokenAndSource(token);
        if (Token is not null)
        {
            _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Token);
        }
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("loop-client", typeof(LoopApiClient).Assembly.GetName().Version?.ToString(3) ?? "0"));
    }

    /// <summary>The URL as given.</summary>
    public string ApiUrl { get; }

    /// <summary>The bearer token sent, if any.</summary>
    public string? Token { get; }

    /// <summary>The explicit URL, else LOOP_API_URL, else the daemon's of this user's Loop home
    /// (<see cref="ConfiguredApiUrl"/>): every command finds the daemon the same way.</summary>
    public static string ResolveApiUrl(string? explicitUrl)
    {
        if ((NonEmpty(explicitUrl) ?? NonEmpty(Environment.GetEnvironmentVariable("LOOP_API_URL"))) is { } given)
        {
            return given;
        }
        try
        {
            return ConfiguredApiUrl(LoopPaths.FromEnvironment());
        }
        catch (ConfigException)
        {
            // loop serve refuses this config too: no daemon of it listens anywhere else.
            return DefaultApiUrl;
        }
    }

    /// <summary>Where the daemon of <paramref name="paths"/> listens: api_addr from its config.json (and
    /// LOOP_API_ADDR; the default without one), overridden by its silo.json, as <c>loop serve</c> reads
    /// them; a wildcard host means loopback.</summary>
    /// <exception cref="ConfigException">A config file is unusable.</exception>
    public static string ConfiguredApiUrl(LoopPaths paths)
    {
        var config = ConfigLoader.Load(paths).Config;
        return BaseUrl(NodeSettings.Load(File.Exists(paths.SiloFile) ? paths.SiloFile : null, config).ApiAddr);
    }

    /// <summary>The URL a client on this machine uses for api_addr: a wildcard host (0.0.0.0, *, [::]) means loopback.</summary>
    /// <exception cref="FormatException">api_addr is not usable (config loading refuses it first).</exception>
    public static string BaseUrl(string apiAddr)
    {
        var endpoint = ApiAddress.Parse(apiAddr);
        var host = endpoint.Address switch
        {
            var any when any.Equals(IPAddress.Any) => "127.0.0.1",
            var any when any.Equals(IPAddress.IPv6Any) => "[::1]",
            { AddressFamily: AddressFamily.InterNetworkV6 } v6 => $"[{v6}]",
            var v4 => v4.ToString(),
        };
        return $"http://{host}:{endpoint.Port.ToString(CultureInfo.InvariantCulture)}";
    }

    /// <summary>The explicit token, else LOOP_CHANNEL_TOKEN, else LOOP_API_TOKEN, else the local token
    /// the daemon of this user's Loop home wrote (<see cref="ReadLocalToken"/>); null when there is none.</summary>
    public static string? ResolveToken(string? explicitToken) => ResolveTokenAndSource(explicitToken).Token;

    /// <summary>The token and, for a refusal's message, where it came from (or where none was found).</summary>
    private static (string? Token, string Source) ResolveTokenAndSource(string? explicitToken)
    {
        if (NonEmpty(explicitToken) is { } given)
        {
            return (given, "the token given with --token");
        }
        foreach (var variable in new[] { "LOOP_CHANNEL_TOKEN", "LOOP_API_TOKEN" })
        {
            if (NonEmpty(Environment.GetEnvironmentVariable(variable)) is { } fromEnvironment)
            {
                return (fromEnvironment, $"the token in {variable}");
            }
        }
        var localTokenFile = LoopPaths.FromEnvironment().LocalTokenFile;
        return ReadLocalToken(LoopPaths.FromEnvironment()) is { } local
            ? (local, $"the local token in {localTokenFile} (is the daemon using this LOOP_HOME?)")
            : (null, $"no token: none was given, LOOP_CHANNEL_TOKEN and LOOP_API_TOKEN are unset, and there is no local token in {localTokenFile} "
                + "(the daemon writes it there when it starts; set LOOP_HOME to the daemon's home if it uses another)");
    }

    /// <summary>The machine token the daemon of <paramref name="paths"/> wrote at its last start
    /// (<see cref="LoopPaths.LocalTokenFile"/>), or null.</summary>
    public static string? ReadLocalToken(LoopPaths paths)
    {
        try
        {
            return NonEmpty(File.ReadAllText(paths.LocalTokenFile).Trim());
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            // No daemon has run here as this user: the call goes out without a token and the
            // daemon's 401 says what to do.
            return null;
        }
    }

    /// <summary>Checks an API URL; throws <see cref="FormatException"/> saying which forms are accepted.</summary>
    public static ApiTarget ParseApiUrl(string apiUrl)
    {
        const string Forms = "use http://host:port (like http://127.0.0.1:8222) or unix:///path/to/loop.sock";
        if (!Uri.TryCreate(apiUrl, UriKind.Absolute, out var uri))
        {
            throw new FormatException($"'{apiUrl}' is not a URL; {Forms}");
        }
        if (uri.Scheme == "unix")
        {
            if (!string.IsNullOrEmpty(uri.Host) || uri.LocalPath is not ['/', _, ..])
            {
                throw new FormatException($"'{apiUrl}' does not name a socket by its absolute path; {Forms}");
            }
            return new ApiTarget(true, uri.LocalPath, uri);
        }
        if (uri.Scheme is not ("http" or "https"))
        {
            throw new FormatException($"'{apiUrl}' has an unsupported scheme '{uri.Scheme}'; {Forms}");
        }
        var baseAddress = new Uri(uri.GetLeftPart(UriPartial.Authority) + "/");
        return new ApiTarget(false, "", baseAddress);
    }

    public Task<LoopHealth> GetHealthAsync(CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, "api/health", null, Json.LoopHealth, cancellationToken);

    /// <summary>The nodes serving Loop: one, or a cluster's.</summary>
    public Task<LoopCluster> GetClusterAsync(CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, "api/cluster", null, Json.LoopCluster, cancellationToken);

    /// <summary>Registers the channel for a directory, or finds the one already registered for it.</summary>
    public Task<LoopChannel> EnsureChannelAsync(string? dirPath, string? name = null, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, "api/channels", JsonContent.Create(new CreateChannelRequest(dirPath, name), Json.CreateChannelRequest), Json.LoopChannel, cancellationToken);

    public Task<LoopChannel> GetChannelAsync(string channelId, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, $"api/channels/{Escape(channelId)}", null, Json.LoopChannel, cancellationToken);

    /// <summary>The channel's token, which scopes a client to that channel (user side only).</summary>
    public async Task<string> GetChannelTokenAsync(string channelId, CancellationToken cancellationToken = default) =>
        (await SendAsync(HttpMethod.Get, $"api/channels/{Escape(channelId)}/token", null, Json.ChannelToken, cancellationToken)).Token;

    /// <summary>Tasks of one channel, or every task the caller may see when <paramref name="channelId"/> is null.</summary>
    public Task<List<LoopTask>> ListTasksAsync(string? channelId = null, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, channelId is null ? "api/tasks" : $"api/tasks?channel_id={Escape(channelId)}", null, Json.ListLoopTask, cancellationToken);

    public Task<LoopTask> GetTaskAsync(string taskId, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, $"api/tasks/{Escape(taskId)}", null, Json.LoopTask, cancellationToken);

    public Task<LoopTask> CreateTaskAsync(CreateTaskRequest request, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, "api/tasks", JsonContent.Create(request, Json.CreateTaskRequest), Json.LoopTask, cancellationToken);

    public Task<LoopTask> UpdateTaskAsync(string taskId, UpdateTaskRequest request, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Patch, $"api/tasks/{Escape(taskId)}", JsonContent.Create(request, Json.UpdateTaskRequest), Json.LoopTask, cancellationToken);

    /// <summary>Removes the git worktree a fork works in; with <paramref name="force"/> even with changes not committed.</summary>
    public Task<LoopChannel> RemoveWorktreeAsync(string channelId, bool force = false, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Delete, $"api/channels/{Escape(channelId)}/worktree{(force ? "?force=true" : "")}", null, Json.LoopChannel, cancellationToken);

    public async Task DeleteTaskAsync(string taskId, CancellationToken cancellationToken = default)
    {
        using var response = await SendRawAsync(HttpMethod.Delete, $"api/tasks/{Escape(taskId)}", null, cancellationToken);
    }

    /// <summary>The task's runs, newest first.</summary>
    public Task<List<LoopRun>> ListTaskRunsAsync(string taskId, int? limit = null, string? before = null, CancellationToken cancellationToken = default)
    {
        var query = new List<string>();
        if (limit is { } l)
        {
            query.Add($"limit={l}");
        }
        if (before is not null)
        {
            query.Add($"before={Escape(before)}");
        }
        var path = $"api/tasks/{Escape(taskId)}/runs" + (query.Count > 0 ? "?" + string.Join("&", query) : "");
        return SendAsync(HttpMethod.Get, path, null, Json.ListLoopRun, cancellationToken);
    }

    /// <summary>Loop tasks: starts a new cycle.</summary>
    public Task<LoopTask> StartTaskAsync(string taskId, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, $"api/tasks/{Escape(taskId)}/start", null, Json.LoopTask, cancellationToken);

    /// <summary>Loop tasks: stops the running cycle.</summary>
    public Task<LoopTask> StopTaskAsync(string taskId, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, $"api/tasks/{Escape(taskId)}/stop", null, Json.LoopTask, cancellationToken);

    public Task<List<TaskTemplate>> ListTemplatesAsync(CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, "api/templates", null, Json.ListTaskTemplate, cancellationToken);

    /// <summary>Adds a template's task to a channel; adding the same template again returns the existing task.</summary>
    public Task<LoopTask> AddTemplateAsync(string channelId, string templateName, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, $"api/channels/{Escape(channelId)}/templates/{Escape(templateName)}", null, Json.LoopTask, cancellationToken);

    private async Task<T> SendAsync<T>(HttpMethod method, string path, HttpContent? body, JsonTypeInfo<T> typeInfo, CancellationToken cancellationToken)
    {
        using var response = await SendRawAsync(method, path, body, cancellationToken);
        try
        {
            return await response.Content.ReadFromJsonAsync(typeInfo, cancellationToken)
                ?? throw new LoopApiException($"the daemon at {ApiUrl} answered {method} /{path} with an empty body", (int)response.StatusCode);
        }
        catch (JsonException error)
        {
            throw new LoopApiException($"the daemon at {ApiUrl} answered {method} /{path} with JSON this client does not understand ({error.Message}); are the daemon and this loop the same version?", (int)response.StatusCode, inner: error);
        }
    }

    private async Task<HttpResponseMessage> SendRawAsync(HttpMethod method, string path, HttpContent? body, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, path) { Content = body };
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, cancellationToken);
        }
        catch (HttpRequestException error)
        {
            throw new LoopApiException(
                $"the Loop daemon is not reachable at {ApiUrl} ({Innermost(error).Message}); start it with `loop serve` or `loop daemon:start`",
                inner: error);
        }
        catch (TaskCanceledException error) when (!cancellationToken.IsCancellationRequested)
        {
            throw new LoopApiException($"the Loop daemon at {ApiUrl} did not answer {method} /{path} within {_http.Timeout.TotalSeconds:0} s", inner: error);
        }
        if (response.IsSuccessStatusCode)
        {
            return response;
        }
        using (response)
        {
            var refusal = await ToExceptionAsync(response, cancellationToken);
            throw refusal.StatusCode == (int)HttpStatusCode.Unauthorized
                ? new LoopApiException($"{refusal.Message}; this call sent {_tokenSource}", refusal.StatusCode, refusal.Errors)
                : refusal;
        }
    }

    private static async Task<LoopApiException> ToExceptionAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var status = (int)response.StatusCode;
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        ProblemDetails? problem = null;
        try
        {
            problem = text.Length > 0 ? JsonSerializer.Deserialize(text, Json.ProblemDetails) : null;
        }
        catch (JsonException)
        {
        }
        var detail = NonEmpty(problem?.Detail) ?? NonEmpty(problem?.Title) ?? NonEmpty(Shorten(text)) ?? DefaultDetail(response.StatusCode);
        // Field errors usually repeat the detail; add only the ones that say more.
        var extra = (problem?.Errors ?? [])
            .SelectMany(kv => kv.Value.Select(message => (Field: kv.Key, Message: message)))
            .Where(e => !detail.Contains(e.Message, StringComparison.Ordinal))
            .Select(e => $"{e.Field}: {e.Message}")
            .ToList();
        var message = extra.Count > 0 ? $"{detail} ({string.Join("; ", extra)})" : detail;
        return new LoopApiException(message, status, problem?.Errors);
    }

    private static string DefaultDetail(HttpStatusCode status) => status switch
    {
        HttpStatusCode.Unauthorized => "the daemon wants a valid token (--token, LOOP_CHANNEL_TOKEN, LOOP_API_TOKEN, or the local token that a daemon on this machine writes under LOOP_HOME)",
        HttpStatusCode.Forbidden => "this token is not allowed to do that",
        HttpStatusCode.NotFound => "not found",
        _ => $"the daemon answered {(int)status} {status}",
    };

    private static Exception Innermost(Exception error)
    {
        while (error.InnerException is not null)
        {
            error = error.InnerException;
        }
        return error;
    }

    private static string? Shorten(string text)
    {
        text = text.Trim();
        return text.Length > 300 ? text[..300] + "…" : text;
    }

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;

    private static string Escape(string value) => Uri.EscapeDataString(value);

    public void Dispose() => _http.Dispose();
}

/// <summary>A parsed API URL: TCP at <see cref="BaseAddress"/>, or the unix socket at <see cref="LocalPath"/>.</summary>
public sealed record ApiTarget(bool IsUnixSocket, string LocalPath, Uri BaseAddress);
