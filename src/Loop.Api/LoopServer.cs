namespace Loop.Api;

using System.Net;
using System.Net.Sockets;
using Loop.Config;
using Loop.Runtime;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

/// <summary>The REST API of a node: on the configured TCP address for people and
/// scripts, and on a unix socket under the Loop home for agent containers.</summary>
public static class LoopServer
{
    /// <summary>The API's services and listeners: the TCP address for people and scripts, the unix
    /// socket for agent containers.</summary>
    public static void Configure(WebApplicationBuilder builder, LoopConfig config, LoopPaths paths)
    {
        var endpoint = ApiAddress.Parse(config.ApiAddr);
        EnsureFree(endpoint);
        builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.TypeInfoResolverChain.Insert(0, ApiJsonContext.Default));
        builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.TypeInfoResolverChain.Insert(1, AuthJsonContext.Default));
        builder.Services.AddRateLimiter(options => ApiRateLimits.Configure(options, config.ApiRateLimitPerMinute));
        builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.TypeInfoResolverChain.Insert(0, UsageJsonContext.Default));
        // The OpenAPI document describes each type through these options: named as the contexts above
        // write it (a context's own naming holds only for its own options).
        builder.Services.ConfigureHttpJsonOptions(o =>
        {
            o.SerializerOptions.TypeInfoResolverChain.Insert(0, RuntimeJsonContext.Default);
            o.SerializerOptions.PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower;
            // Numbers are numbers (the Web defaults would also describe each as a string of digits).
            o.SerializerOptions.NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.Strict;
        });
        ApiReference.Configure(builder.Services);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Listen(endpoint);
            var socket = paths.DaemonSocket;
            Directory.CreateDirectory(Path.GetDirectoryName(socket)!);
            File.Delete(socket); // a stale socket from a crashed daemon would block the bind
            kestrel.ListenUnixSocket(socket);
        });
    }

    /// <summary>Kestrel binds last, once the silo has joined its cluster and connectors have connected:
    /// a node whose address is taken says so before it does any of that.</summary>
    private static void EnsureFree(IPEndPoint endpoint)
    {
        using var probe = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        // As Kestrel binds on Linux: a port left with connections in TIME_WAIT is free.
        probe.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        try
        {
            probe.Bind(endpoint);
        }
        catch (SocketException error) when (error.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            throw new IOException($"Failed to bind to address http://{endpoint}: address already in use (api_addr: another program, or another loop serve, listens there)", error);
        }
    }

    /// <summary>The API's pipeline and endpoints, each a thin call into the node's services.</summary>
    public static void Map(WebApplication app)
    {
        var config = app.Services.GetRequiredService<LoopConfig>();
        var paths = app.Services.GetRequiredService<LoopPaths>();
        var health = app.Services.GetRequiredService<NodeHealth>();
        var tokens = app.Services.GetRequiredService<ChannelTokens>();
        var auth = app.Services.GetRequiredService<AuthService>();
        var hosts = new ServedHosts(ApiAddress.Parse(config.ApiAddr).Port, config.AllowedHosts);
        app.Lifetime.ApplicationStarted.Register(() =>
        {
            // Agents may run as another user than the daemon: they need write access to connect.
            // Only containers see the socket: the Loop home around it is the daemon user's alone.
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(paths.DaemonSocket, (UnixFileMode)0b110_110_110);
            }
            health.ContainerEndpoint = paths.DaemonSocket;
        });
        app.Use(ApiErrors.CatchAsync);
        app.Use(hosts.CheckAsync);
        app.Use(DashboardAssets.ServeAsync);
        app.Use((context, next) => ApiCallers.IdentifyAsync(context, next, tokens, auth));
        app.UseRateLimiter();
        app.Use(ApiCallers.AdmitAsync);
        app.UseStatusCodePages(async context =>
        {
            // Errors the routing layer makes on its own (405, 415) also answer in problem details.
            var http = context.HttpContext;
            if (http.Response.ContentLength is null && http.Response.ContentType is null)
            {
                await Results.Problem(statusCode: http.Response.StatusCode, detail: $"{http.Request.Method} {http.Request.Path} is not supported")
                    .ExecuteAsync(http);
            }
        });
        AuthApi.Map(app);
        UsersApi.Map(app);
        LoopApi.Map(app);
        ApiReference.Map(app);
    }
}
