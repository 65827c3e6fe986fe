import type { Worker } from '../registry/worker.js'

/**
 * A radix tree over request text with workers as tenants (SGLang's approximate cache tree).
 * Each node holds one edge label and, per tenant, when that tenant last routed text through it.
 * A tenant on a node means "this worker has probably cached this prefix".
 */
class TreeNode {
  edge: string
  parent: TreeNode | null
  readonly children = new Map<number, TreeNode>()
  readonly tenants = new Map<Worker, number>()

  constructor (edge: string, parent: TreeNode | null) {
    this.edge = edge
    this.parent = parent
  }
}

export interface TreeMatch {
  /** Characters of the text matched from the root. */
  chars: number
  /** Tenants of the deepest node reached (the workers holding the longest match). */
  tenants: ReadonlyMap<Worker, number> | null
}

function commonPrefix (a: string, ai: number, b: string): number {
  const n = Math.min(a.length - ai, b.length)
  let i = 0
  while (i < n && a.charCodeAt(ai + i) === b.charCodeAt(i)) i++
  return i
}

export class TextTree {
  private readonly root = new TreeNode('', null)
  /** Characters owned per tenant, for the size cap. */
  readonly tenantChars = new Map<Worker, number>()

  /** Longest stored prefix of `text`. */
  match (text: string): TreeMatch {
    let node = this.root
    let i = 0
    let best: TreeNode | null = null
    while (i < text.length) {
      const child = node.children.get(text.charCodeAt(i))
      if (child === undefined) break
      const k = commonPrefix(text, i, child.edge)
      i += k
      if (child.tenants.size > 0) best = child
      if (k < child.edge.length) break
      node = child
    }
    return { chars: i, tenants: best === null ? null : best.tenants }
  }

  /** Records that `worker` now holds `text` (every node on its path gets the tenant). */
  insert (text: string, worker: Worker, now: number): void {
    let node = this.root
    let i = 0
    while (i < text.length) {
      const c = text.charCodeAt(i)
      let child = node.children.get(c)
      if (child === undefined) {
        child = new TreeNode(text.slice(i), node)
        node.children.set(c, child)
        this.own(child, worker, now)
        return
      }
      const k = commonPrefix(text, i, child.edge)
      if (k < child.edge.length) child = this.split(child, k)
      this.own(child, worker, now)
      i += k
      node = child
    }
  }

  private own (node: TreeNode, worker: Worker, now: number): void {
    if (!node.tenants.has(worker)) this.tenantChars.set(worker, (this.tenantChars.get(worker) ?? 0) + node.edge.length)
    node.tenants.set(worker, now)
  }

  /** Splits `node`'s edge at `k`: a new parent takes the first k characters and all tenants. */
  private split (node: TreeNode, k: number): TreeNode {
    const parent = node.parent!
    const head = new TreeNode(node.edge.slice(0, k), parent)
    for (const [w, t] of node.tenants) head.tenants.set(w, t)
    // Tenants' char counts are unchanged: the edge is only cut in two, both halves owned alike.
    parent.children.set(head.edge.charCodeAt(0), head)
    node.edge = node.edge.slice(k)
    node.parent = head
    head.children.set(node.edge.charCodeAt(0), node)
    return head
  }

  /** Forgets a worker everywhere (it left the model). */
  removeTenant (worker: Worker): void {
    const walk = (n: TreeNode): void => {
      n.tenants.delete(worker)
      for (const c of [...n.children.values()]) walk(c)
      if (n !== this.root && n.tenants.size === 0 && n.children.size === 0) n.parent!.children.delete(n.edge.charCodeAt(0))
    }
    walk(this.root)
    this.tenantChars.delete(worker)
  }

  /**
   * Evicts least-recently-used leaves of every tenant over `maxChars` until it is under it.
   * Leaves go first, so shared prefixes (inner nodes) survive longest.
   */
  prune (maxChars: number): number {
    let evicted = 0
    const over = [...this.tenantChars].filter(([, n]) => n > maxChars).map(([w]) => w)
    for (const w of over) {
      const leaves: Array<[TreeNode, number]> = []
      const collect = (n: TreeNode): void => {
        let ownedChild = false
        for (const c of n.children.values()) { if (c.tenants.has(w)) ownedChild = true; collect(c) }
        if (!ownedChild && n.tenants.has(w)) leaves.push([n, n.tenants.get(w)!])
      }
      collect(this.root)
      leaves.sort((a, b) => a[1] - b[1])
      for (const [leaf] of leaves) {
        if ((this.tenantChars.get(w) ?? 0) <= maxChars) break
        let n: TreeNode | null = leaf
        // Walk up while the tenant owns nothing below: evict whole unshared tails at once.
        while (n !== null && n !== this.root && n.tenants.has(w) && ![...n.children.values()].some(c => c.tenants.has(w))) {
          n.tenants.delete(w)
          this.tenantChars.set(w, this.tenantChars.get(w)! - n.edge.length)
          evicted += n.edge.length
          const parent: TreeNode | null = n.parent
          if (n.tenants.size === 0 && n.children.size === 0) parent!.children.delete(n.edge.charCodeAt(0))
          if ((this.tenantChars.get(w) ?? 0) <= maxChars) break
          n = parent
        }
      }
    }
    return evicted
  }

  /** Total characters stored (shared edges counted once). */
  size (): number {
    let total = 0
    const walk = (n: TreeNode): void => { total += n.edge.length; for (const c of n.children.values()) walk(c) }
    walk(this.root)
    return total
  }
}
