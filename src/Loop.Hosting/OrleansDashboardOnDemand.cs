namespace Loop.Hosting;

using Loop.Api;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Orleans.Dashboard;

/// <summary>
/// Serves the Orleans dashboard under <see cref="ApiCallers.OrleansDashboardPath"/>, mapping it on
/// its first visit. Mapping it reads, gzips and hashes every asset it embeds (0.6 s of start-up and
/// tens of MB that stay resident), which a daemon whose Orleans dashboard nobody opens should not pay.
/// Runs after Loop's admission, so only the admin reaches it.
/// </summary>
internal sealed class OrleansDashboardOnDemand(IServiceProvider services)
{
    private readonly Lazy<RequestDelegate> _dashboard = new(() => Build(services));

    public Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        if (!context.Request.Path.StartsWithSegments(ApiCallers.OrleansDashboardPath))
        {
            return next(context);
        }
        // The dashboard's own routing matches the request; a match of Loop's would stop it from trying.
        context.SetEndpoint(null);
        return _dashboard.Value(context);
    }

    private static RequestDelegate Build(IServiceProvider services)
    {
        var app = new ApplicationBuilder(services);
        app.UseRouting();
        app.UseEndpoints(endpoints => endpoints.MapOrleansDashboard(routePrefix: ApiCallers.OrleansDashboardPath));
        return app.Build();
    }
}
